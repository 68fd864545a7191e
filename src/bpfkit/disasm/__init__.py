"""Bytecode to text: one instruction in LLVM's syntax (``llvm_text``) or the kernel verifier's
(``kernel_syntax``), and a whole object as ``llvm-objdump -d`` prints it (``objdump``)."""
