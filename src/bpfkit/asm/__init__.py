"""Text forms of BPF instructions: the disassembler and the assembler."""
