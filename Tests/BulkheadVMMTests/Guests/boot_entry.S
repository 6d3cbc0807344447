/* boot_entry.S — 64-bit entry of the boot test guest, entered like a Linux kernel's startup_64:
 * long mode, CPL0, interrupts off, RSI = address of struct boot_params (the zero page), RSP = a
 * small stack set up by the VMM. */
    .code64
    .section .text.entry, "ax"
    .globl _start
_start:
    cld
    movq %rsi, %rdi          /* guest_main(boot_params) */
    call guest_main
1:  cli                      /* guest_main resets the VM and never returns; halt if it does */
    hlt
    jmp 1b
    .section .note.GNU-stack, "", @progbits
