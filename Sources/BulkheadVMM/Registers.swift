import CBulkhead

/// General-purpose registers of a vCPU (struct kvm_regs), without exposing the C type.
public struct GeneralRegisters {
    var raw = kvm_regs()

    public init() {}
    init(_ raw: kvm_regs) { self.raw = raw }

    public var rax: UInt64 { get { raw.rax } set { raw.rax = newValue } }
    public var rbx: UInt64 { get { raw.rbx } set { raw.rbx = newValue } }
    public var rcx: UInt64 { get { raw.rcx } set { raw.rcx = newValue } }
    public var rdx: UInt64 { get { raw.rdx } set { raw.rdx = newValue } }
    public var rsi: UInt64 { get { raw.rsi } set { raw.rsi = newValue } }
    public var rdi: UInt64 { get { raw.rdi } set { raw.rdi = newValue } }
    public var rsp: UInt64 { get { raw.rsp } set { raw.rsp = newValue } }
    public var rbp: UInt64 { get { raw.rbp } set { raw.rbp = newValue } }
    public var rip: UInt64 { get { raw.rip } set { raw.rip = newValue } }
    public var rflags: UInt64 { get { raw.rflags } set { raw.rflags = newValue } }
}

/// A segment register as KVM describes it: the selector plus the descriptor cache.
public struct SegmentRegister: Equatable, Sendable {
    public var base: UInt64 = 0
    public var limit: UInt32 = 0
    public var selector: UInt16 = 0
    public var type: UInt8 = 0
    public var present = false
    public var dpl: UInt8 = 0
    /// D/B: default operand size 32 bits (must be 0 for a 64-bit code segment).
    public var db = false
    /// S: code/data (true) versus system segment (false).
    public var s = false
    /// L: 64-bit code segment.
    public var l = false
    /// G: limit counts 4 KiB units.
    public var g = false
    public var avl = false
    public var unusable = false

    public init() {}

    /// The segment register after loading the GDT descriptor `descriptor` at GDT index `index`.
    public init(descriptor: UInt64, index: UInt16) {
        base = ((descriptor >> 16) & 0xff_ffff) | (((descriptor >> 56) & 0xff) << 24)
        let rawLimit = UInt32((descriptor & 0xffff) | ((descriptor >> 32) & 0xf_0000))
        g = (descriptor >> 55) & 1 == 1
        limit = g ? (rawLimit << 12) | 0xfff : rawLimit
        selector = index * 8
        type = UInt8((descriptor >> 40) & 0xf)
        present = (descriptor >> 47) & 1 == 1
        dpl = UInt8((descriptor >> 45) & 3)
        db = (descriptor >> 54) & 1 == 1
        s = (descriptor >> 44) & 1 == 1
        l = (descriptor >> 53) & 1 == 1
        avl = (descriptor >> 52) & 1 == 1
        unusable = !present
    }

    init(_ k: kvm_segment) {
        base = k.base; limit = k.limit; selector = k.selector; type = k.type
        present = k.present != 0; dpl = k.dpl; db = k.db != 0; s = k.s != 0; l = k.l != 0; g = k.g != 0
        avl = k.avl != 0; unusable = k.unusable != 0
    }

    var kvm: kvm_segment {
        var k = kvm_segment()
        k.base = base; k.limit = limit; k.selector = selector; k.type = type
        k.present = present ? 1 : 0; k.dpl = dpl; k.db = db ? 1 : 0; k.s = s ? 1 : 0; k.l = l ? 1 : 0
        k.g = g ? 1 : 0; k.avl = avl ? 1 : 0; k.unusable = unusable ? 1 : 0
        return k
    }
}

/// A GDTR/IDTR value.
public struct DescriptorTable: Equatable, Sendable {
    public var base: UInt64
    public var limit: UInt16
    public init(base: UInt64, limit: UInt16) { self.base = base; self.limit = limit }
}

/// Segment, control and descriptor-table registers of a vCPU (struct kvm_sregs). Fields not exposed
/// (the pending-interrupt bitmap) are carried through unchanged from KVM_GET_SREGS.
public struct SpecialRegisters {
    var raw: kvm_sregs

    init(_ raw: kvm_sregs) { self.raw = raw }

    public var cs: SegmentRegister { get { .init(raw.cs) } set { raw.cs = newValue.kvm } }
    public var ds: SegmentRegister { get { .init(raw.ds) } set { raw.ds = newValue.kvm } }
    public var es: SegmentRegister { get { .init(raw.es) } set { raw.es = newValue.kvm } }
    public var fs: SegmentRegister { get { .init(raw.fs) } set { raw.fs = newValue.kvm } }
    public var gs: SegmentRegister { get { .init(raw.gs) } set { raw.gs = newValue.kvm } }
    public var ss: SegmentRegister { get { .init(raw.ss) } set { raw.ss = newValue.kvm } }
    public var tr: SegmentRegister { get { .init(raw.tr) } set { raw.tr = newValue.kvm } }
    public var ldt: SegmentRegister { get { .init(raw.ldt) } set { raw.ldt = newValue.kvm } }
    public var gdt: DescriptorTable {
        get { .init(base: raw.gdt.base, limit: raw.gdt.limit) }
        set { raw.gdt.base = newValue.base; raw.gdt.limit = newValue.limit }
    }
    public var idt: DescriptorTable {
        get { .init(base: raw.idt.base, limit: raw.idt.limit) }
        set { raw.idt.base = newValue.base; raw.idt.limit = newValue.limit }
    }
    public var cr0: UInt64 { get { raw.cr0 } set { raw.cr0 = newValue } }
    public var cr2: UInt64 { get { raw.cr2 } set { raw.cr2 = newValue } }
    public var cr3: UInt64 { get { raw.cr3 } set { raw.cr3 = newValue } }
    public var cr4: UInt64 { get { raw.cr4 } set { raw.cr4 = newValue } }
    public var cr8: UInt64 { get { raw.cr8 } set { raw.cr8 = newValue } }
    public var efer: UInt64 { get { raw.efer } set { raw.efer = newValue } }
    public var apicBase: UInt64 { get { raw.apic_base } set { raw.apic_base = newValue } }
}
