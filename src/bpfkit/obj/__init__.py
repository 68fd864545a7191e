"""Reading (and, for the assembler, writing) BPF ELF relocatable objects."""
