/* smp_trampoline.S — where an application processor starts: the SIPI puts it in real mode at
 * vector * 4 KiB, and smp_guest.c copies this code to SMP_TRAMPOLINE (0x10000, vector 0x10) first.
 * It climbs to long mode as Linux's trampoline does (GDT, protected mode, PAE, the boot processor's
 * CR3, EFER.LME, paging), then records its LAPIC id in ap_apic_ids[] (slot taken with lock xadd
 * on ap_started) and halts for good. No stack, no C: nothing here needs one. */
#define SMP_TRAMPOLINE 0x10000
#define AT(x) ((x) - smp_trampoline_start + SMP_TRAMPOLINE)

    .section .rodata.trampoline, "a"
    .globl smp_trampoline_start, smp_trampoline_end, smp_trampoline_cr3
    .code16
smp_trampoline_start:
    cli
    movw %cs, %ax
    movw %ax, %ds
    lgdtl (gdt_pointer - smp_trampoline_start)
    movl %cr0, %eax
    orl $1, %eax                        /* PE */
    movl %eax, %cr0
    ljmpl $0x18, $AT(protected_mode)

    .code32
protected_mode:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax
    orl $0x20, %eax                     /* PAE */
    movl %eax, %cr4
    movl AT(smp_trampoline_cr3), %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx              /* EFER.LME */
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000000, %eax               /* PG: long mode */
    movl %eax, %cr0
    ljmpl $0x08, $AT(long_mode)

    .code64
long_mode:
    movabsq $0xfee00020, %rdx           /* LAPIC ID register: the id in bits 31:24 */
    movl (%rdx), %eax
    shrl $24, %eax
    movl $1, %ecx
    lock xaddl %ecx, ap_started
    movl %eax, ap_apic_ids(,%rcx,4)
1:  cli
    hlt
    jmp 1b

    .align 8
gdt:
    .quad 0
    .quad 0x00af9a000000ffff            /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff            /* 0x10: data */
    .quad 0x00cf9a000000ffff            /* 0x18: 32-bit code */
gdt_pointer:
    .word gdt_pointer - gdt - 1
    .long AT(gdt)
smp_trampoline_cr3:
    .long 0                             /* the boot processor's page tables, patched in the copy */
smp_trampoline_end:
    .section .note.GNU-stack, "", @progbits
