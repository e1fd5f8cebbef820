//! Parsing clang-built BPF ELF objects into programs, map definitions and relocations.
//!
//! **Architecture invariant:** this module does no I/O and creates no maps. It takes the
//! bytes of an object and yields values: [`BpfObject::parse`] finds the programs and map
//! definitions, [`BpfObject::link`] produces one program image with its bpf-to-bpf callees
//! appended and a relocation table naming the maps each `ld_imm64` refers to. Turning
//! those references into addresses of live maps is the loader's job ([`super::vm`]), where
//! the caller supplies the map handles (the aya split between `aya-obj` and `aya`).
//!
//! What is understood:
//! - programs: every executable section; each global function symbol in it is a program
//!   (named by the symbol), and in `.text` global functions are uBPF/Oko entry points;
//! - maps: BTF-defined maps in `.maps`, legacy `struct bpf_map_def` in `maps`, the data
//!   sections `.rodata*`, `.data*` and `.bss*` as one-entry array maps, and for the uBPF ABI
//!   `struct ubpf_map_def` globals (Oko's map numbering);
//! - relocations: `ld_imm64` of a map (pseudo map fd) or of an address inside a data section
//!   (pseudo map value), and bpf-to-bpf calls, within a section or into `.text`.
//!
//! Anything else is refused with [`ExtError::Unsupported`] naming the section, relocation,
//! symbol or instruction.

use std::collections::{BTreeMap, HashMap};

use object::{
    Object as _, ObjectSection as _, ObjectSymbol as _, RelocationFlags, RelocationTarget,
    SectionKind,
};
use verifier_analysis::platform::Abi;

use super::btf::Btf;
use super::insn::{Insn, INSN_SIZE};
use super::ExtError;

/// `EM_BPF`, the ELF machine number of eBPF objects.
const EM_BPF: u16 = 247;
/// `R_BPF_64_64`: relocation of an `ld_imm64`.
const R_BPF_64_64: u32 = 1;
/// `R_BPF_64_32`: relocation of a call immediate.
const R_BPF_64_32: u32 = 10;
/// Largest `.data`/`.rodata`/`.bss` section accepted.
const MAX_DATA_SECTION: u64 = 16 << 20;
/// Size of Oko's `struct ubpf_map_def` (five `u32`).
pub const UBPF_MAP_DEF_SIZE: u64 = 20;

/// Where a map definition came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapOrigin {
    /// A BTF-defined map in the `.maps` section.
    BtfMaps,
    /// A `struct bpf_map_def` in the legacy `maps` section.
    Legacy,
    /// A data section (`.rodata`, `.data`, `.bss` and their suffixed variants).
    Data,
    /// An Oko `struct ubpf_map_def` global (uBPF ABI, Oko's type numbering).
    Ubpf,
}

/// A map definition found in an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDef {
    /// Map name: the symbol name, or the section name for data sections.
    pub name: String,
    /// Map type number, kernel numbering (Oko numbering is translated when parsed).
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// Map flags (`BPF_F_*`).
    pub flags: u32,
    /// Where the definition came from.
    pub origin: MapOrigin,
    /// Initial value of entry 0 (data sections only; zeroes for `.bss`).
    pub initial: Option<Vec<u8>>,
    /// Whether programs may only read the map (`.rodata`).
    pub readonly: bool,
}

/// How an `ld_imm64` refers to a map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapRelocKind {
    /// The map itself (a map handle passed to helpers).
    Map,
    /// The address `offset` bytes into the value of entry 0 (globals in data sections).
    Value {
        /// Offset into the value.
        offset: u32,
    },
}

/// One `ld_imm64` to patch with a map address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapReloc {
    /// Index of the `ld_imm64`'s first slot in the program image.
    pub insn: usize,
    /// Index into [`LinkedProgram::maps`].
    pub map: usize,
    /// What the instruction loads.
    pub kind: MapRelocKind,
}

/// A program found in an object (before linking).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramInfo {
    /// Function symbol name (or the section name for a section without symbols).
    pub name: String,
    /// Section name.
    pub section: String,
    /// The ABI implied by the section name, when it implies one.
    pub abi_hint: Option<Abi>,
    /// Number of instruction slots in the function itself (callees excluded).
    pub insn_count: usize,
}

/// A program linked into one image: its callees appended and its map references listed.
#[derive(Clone, Debug)]
pub struct LinkedProgram {
    /// Program name.
    pub name: String,
    /// Section it came from.
    pub section: String,
    /// ABI the program is linked for.
    pub abi: Abi,
    /// The instruction image; bpf-to-bpf call immediates are relative offsets within it.
    pub insns: Vec<Insn>,
    /// Start index of each function in the image (the entry function is at 0).
    pub functions: Vec<usize>,
    /// All maps the object defines for this ABI; `relocs` index into it.
    pub maps: Vec<MapDef>,
    /// `ld_imm64` instructions to patch.
    pub relocs: Vec<MapReloc>,
}

#[derive(Clone, Debug)]
struct Section {
    name: String,
    data: Vec<u8>,
    size: u64,
    exec: bool,
    /// Relocations by byte offset: (r_type, symbol index).
    relocs: BTreeMap<u64, (u32, usize)>,
}

#[derive(Clone, Debug)]
struct Symbol {
    name: String,
    section: Option<usize>,
    address: u64,
    size: u64,
    is_func: bool,
    is_section: bool,
    is_global: bool,
}

/// A function inside an executable section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct FuncRef {
    section: usize,
    /// Start, in instruction slots from the section start.
    start: usize,
    /// Length in instruction slots.
    len: usize,
}

/// A parsed BPF object.
#[derive(Clone, Debug)]
pub struct BpfObject {
    sections: Vec<Option<Section>>,
    symbols: Vec<Symbol>,
    /// Programs with their function.
    programs: Vec<(ProgramInfo, FuncRef)>,
    /// BTF `.maps` and legacy `maps` definitions with their (section, offset).
    map_defs: Vec<(MapDef, usize, u64)>,
    /// Legacy `maps` section indices (their definitions change with the ABI).
    legacy_sections: Vec<usize>,
    license: Option<String>,
}

/// The ABI a section name implies: `xdp*` is XDP; `.text`, `ubpf*`, `oko*`, `filter*`,
/// `prog*` and `action*` are the uBPF/Oko ABI.
pub fn abi_for_section(section: &str) -> Option<Abi> {
    if section == "xdp"
        || section.starts_with("xdp/")
        || section.starts_with("xdp.")
        || section.starts_with("xdp_")
    {
        Some(Abi::Xdp)
    } else if section == ".text"
        || ["ubpf", "oko", "filter", "prog", "action"]
            .iter()
            .any(|p| section.starts_with(p))
    {
        Some(Abi::Ubpf)
    } else {
        None
    }
}

fn is_data_section(name: &str) -> bool {
    [".rodata", ".data", ".bss"]
        .iter()
        .any(|p| name == *p || name.strip_prefix(p).is_some_and(|r| r.starts_with('.')))
}

fn is_legacy_maps_section(name: &str) -> bool {
    name == "maps" || name.starts_with("maps/")
}

/// Translates Oko's uBPF map type numbering to the kernel's, refusing the kinds bpfswitch
/// does not implement.
fn ubpf_map_type(t: u32, name: &str) -> Result<u32, ExtError> {
    match t {
        1 => Ok(super::maps::map_type::ARRAY),
        4 => Ok(super::maps::map_type::HASH),
        2 | 3 => Err(ExtError::Unsupported(format!(
            "uBPF map {name}: Oko bloom-filter and count-min maps (type {t}) are not supported"
        ))),
        t => Err(ExtError::Unsupported(format!(
            "uBPF map {name}: unknown Oko map type {t}"
        ))),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
        .unwrap_or(0)
}

impl BpfObject {
    /// Parses an ELF BPF object. Never panics on arbitrary bytes.
    pub fn parse(data: &[u8]) -> Result<BpfObject, ExtError> {
        let file = object::File::parse(data).map_err(|e| ExtError::Elf(e.to_string()))?;
        if !file.is_little_endian() {
            return Err(ExtError::Unsupported("big-endian BPF objects".into()));
        }
        match file.flags() {
            object::FileFlags::Elf { .. } => {}
            _ => return Err(ExtError::Elf("not an ELF file".into())),
        }
        if file.architecture() != object::Architecture::Bpf {
            return Err(ExtError::Elf(format!(
                "ELF machine is {:?}, not BPF (EM_BPF = {EM_BPF}); build with `clang -target bpf`",
                file.architecture()
            )));
        }

        let mut symbols = Vec::new();
        let mut sym_index = HashMap::new();
        for s in file.symbols() {
            let section = match s.section() {
                object::SymbolSection::Section(i) => Some(i.0),
                _ => None,
            };
            sym_index.insert(s.index().0, symbols.len());
            symbols.push(Symbol {
                name: s.name().unwrap_or("").to_string(),
                section,
                address: s.address(),
                size: s.size(),
                is_func: s.kind() == object::SymbolKind::Text,
                is_section: s.kind() == object::SymbolKind::Section,
                is_global: s.is_global(),
            });
        }

        let nsections = file.sections().map(|s| s.index().0 + 1).max().unwrap_or(0);
        let mut sections: Vec<Option<Section>> = vec![None; nsections];
        let mut license = None;
        let mut btf = None;
        for s in file.sections() {
            let name = s.name().unwrap_or("").to_string();
            let exec = match s.flags() {
                object::SectionFlags::Elf { sh_flags } => {
                    sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0
                }
                _ => false,
            };
            let data = if s.kind() == SectionKind::UninitializedData {
                Vec::new()
            } else {
                s.data()
                    .map_err(|e| ExtError::Elf(format!("section {name}: {e}")))?
                    .to_vec()
            };
            let mut relocs = BTreeMap::new();
            for (off, r) in s.relocations() {
                let r_type = match r.flags() {
                    RelocationFlags::Elf { r_type } => r_type,
                    _ => 0,
                };
                let sym = match r.target() {
                    RelocationTarget::Symbol(i) => *sym_index.get(&i.0).unwrap_or(&usize::MAX),
                    _ => usize::MAX,
                };
                relocs.insert(off, (r_type, sym));
            }
            if name == "license" {
                license = Some(
                    String::from_utf8_lossy(data.split(|&c| c == 0).next().unwrap_or(&[]))
                        .into_owned(),
                );
            }
            if name == ".BTF" {
                btf = Some(Btf::parse(&data)?);
            }
            sections[s.index().0] = Some(Section {
                name,
                size: s.size(),
                data,
                exec,
                relocs,
            });
        }

        let mut obj = BpfObject {
            sections,
            symbols,
            programs: Vec::new(),
            map_defs: Vec::new(),
            legacy_sections: Vec::new(),
            license,
        };
        obj.find_programs()?;
        obj.find_maps(btf.as_ref())?;
        Ok(obj)
    }

    fn section(&self, idx: usize) -> Option<&Section> {
        self.sections.get(idx).and_then(|s| s.as_ref())
    }

    /// Functions of an executable section, from its function symbols.
    fn functions_in(&self, sec: usize) -> Vec<(FuncRef, &Symbol)> {
        let mut v: Vec<_> = self
            .symbols
            .iter()
            .filter(|s| s.is_func && s.section == Some(sec) && s.size > 0)
            .filter(|s| {
                // Functions must be whole instructions inside their section.
                let slots = self.section(sec).map_or(0, |x| x.data.len() / INSN_SIZE) as u64;
                s.address % INSN_SIZE as u64 == 0
                    && s.size % INSN_SIZE as u64 == 0
                    && s.address
                        .checked_add(s.size)
                        .is_some_and(|e| e / INSN_SIZE as u64 <= slots)
            })
            .map(|s| {
                (
                    FuncRef {
                        section: sec,
                        start: (s.address / INSN_SIZE as u64) as usize,
                        len: (s.size / INSN_SIZE as u64) as usize,
                    },
                    s,
                )
            })
            .collect();
        v.sort_by_key(|(f, _)| f.start);
        v.dedup_by_key(|(f, _)| f.start);
        v
    }

    fn find_programs(&mut self) -> Result<(), ExtError> {
        let mut progs = Vec::new();
        for (idx, sec) in self.sections.iter().enumerate() {
            let Some(sec) = sec else { continue };
            if !sec.exec || sec.data.is_empty() {
                continue;
            }
            if sec.data.len() % INSN_SIZE != 0 {
                return Err(ExtError::Elf(format!(
                    "section {}: size {} is not a multiple of the instruction size",
                    sec.name,
                    sec.data.len()
                )));
            }
            let funcs = self.functions_in(idx);
            let nslots = sec.data.len() / INSN_SIZE;
            if funcs.is_empty() {
                // A stripped object: the whole section is one program named after it.
                progs.push((
                    ProgramInfo {
                        name: sec.name.clone(),
                        section: sec.name.clone(),
                        abi_hint: abi_for_section(&sec.name),
                        insn_count: nslots,
                    },
                    FuncRef {
                        section: idx,
                        start: 0,
                        len: nslots,
                    },
                ));
                continue;
            }
            for (f, sym) in funcs {
                if f.start + f.len > nslots {
                    return Err(ExtError::Elf(format!(
                        "function {} extends past section {}",
                        sym.name, sec.name
                    )));
                }
                let is_prog = if sec.name == ".text" {
                    sym.is_global
                } else {
                    sym.is_global || f.start == 0
                };
                if is_prog {
                    progs.push((
                        ProgramInfo {
                            name: sym.name.clone(),
                            section: sec.name.clone(),
                            abi_hint: abi_for_section(&sec.name),
                            insn_count: f.len,
                        },
                        f,
                    ));
                }
            }
        }
        self.programs = progs;
        Ok(())
    }

    fn find_maps(&mut self, btf: Option<&Btf>) -> Result<(), ExtError> {
        let mut defs = Vec::new();
        for (idx, sec) in self.sections.iter().enumerate() {
            let Some(sec) = sec else { continue };
            if sec.name == ".maps" {
                let btf = btf.ok_or_else(|| {
                    ExtError::Unsupported(
                        "section .maps without a .BTF section (build with clang -g)".into(),
                    )
                })?;
                for d in btf.maps_section_defs()? {
                    let sym = self
                        .symbols
                        .iter()
                        .find(|s| s.section == Some(idx) && s.name == d.name)
                        .ok_or_else(|| {
                            ExtError::Elf(format!("map {} in .maps has no symbol", d.name))
                        })?;
                    defs.push((
                        MapDef {
                            name: d.name.clone(),
                            map_type: d.map_type,
                            key_size: d.key_size,
                            value_size: d.value_size,
                            max_entries: d.max_entries,
                            flags: d.map_flags,
                            origin: MapOrigin::BtfMaps,
                            initial: None,
                            readonly: false,
                        },
                        idx,
                        sym.address,
                    ));
                }
            } else if is_legacy_maps_section(&sec.name) {
                self.legacy_sections.push(idx);
            }
        }
        // Definition order: by section, then by offset in it.
        defs.sort_by_key(|(_, sec, off)| (*sec, *off));
        self.map_defs = defs;
        Ok(())
    }

    /// Legacy `maps` section definitions (and, for the uBPF ABI, `ubpf_map_def` globals in
    /// `.data`), interpreted for an ABI.
    fn abi_map_defs(&self, abi: Abi) -> Result<Vec<(MapDef, usize, u64)>, ExtError> {
        let mut out = Vec::new();
        let mut sec_ids: Vec<usize> = self.legacy_sections.clone();
        if abi == Abi::Ubpf {
            for (i, s) in self.sections.iter().enumerate() {
                if s.as_ref().is_some_and(|s| s.name == ".data") {
                    sec_ids.push(i);
                }
            }
        }
        for idx in sec_ids {
            let sec = self.section(idx).expect("section exists");
            let legacy = is_legacy_maps_section(&sec.name);
            for s in self
                .symbols
                .iter()
                .filter(|s| s.section == Some(idx) && !s.is_section && !s.name.is_empty())
            {
                if !legacy && s.size != UBPF_MAP_DEF_SIZE {
                    continue;
                }
                let at = usize::try_from(s.address).unwrap_or(usize::MAX);
                if at.checked_add(16).is_none_or(|e| sec.data.len() < e) {
                    return Err(ExtError::Elf(format!(
                        "map definition {} in {} is truncated",
                        s.name, sec.name
                    )));
                }
                let raw_type = u32_at(&sec.data, at);
                let (map_type, flags, origin) = if abi == Abi::Ubpf {
                    (ubpf_map_type(raw_type, &s.name)?, 0, MapOrigin::Ubpf)
                } else {
                    let flags = if s.size >= 20 {
                        u32_at(&sec.data, at + 16)
                    } else {
                        0
                    };
                    (raw_type, flags, MapOrigin::Legacy)
                };
                out.push((
                    MapDef {
                        name: s.name.clone(),
                        map_type,
                        key_size: u32_at(&sec.data, at + 4),
                        value_size: u32_at(&sec.data, at + 8),
                        max_entries: u32_at(&sec.data, at + 12),
                        flags,
                        origin,
                        initial: None,
                        readonly: false,
                    },
                    idx,
                    s.address,
                ));
            }
        }
        Ok(out)
    }

    /// The programs the object contains.
    pub fn programs(&self) -> Vec<ProgramInfo> {
        self.programs.iter().map(|(p, _)| p.clone()).collect()
    }

    /// The license string, if the object has a `license` section.
    pub fn license(&self) -> Option<&str> {
        self.license.as_deref()
    }

    /// Chooses a program: by section name or function name when `which` is given, else the
    /// only program (or the only non-`.text` program when `.text` holds helpers).
    pub fn select(&self, which: Option<&str>) -> Result<ProgramInfo, ExtError> {
        let all = self.programs();
        let found: Vec<_> = match which {
            Some(w) => all
                .iter()
                .filter(|p| p.section == w || p.name == w)
                .cloned()
                .collect(),
            None => {
                let non_text: Vec<_> = all
                    .iter()
                    .filter(|p| p.section != ".text")
                    .cloned()
                    .collect();
                if non_text.is_empty() {
                    all.clone()
                } else {
                    non_text
                }
            }
        };
        match found.len() {
            1 => Ok(found.into_iter().next().expect("one")),
            0 => Err(ExtError::NoProgram {
                wanted: which.unwrap_or("(any)").to_string(),
                available: all
                    .iter()
                    .map(|p| format!("{} (section {})", p.name, p.section))
                    .collect(),
            }),
            _ => Err(ExtError::AmbiguousProgram {
                candidates: found
                    .iter()
                    .map(|p| format!("{} (section {})", p.name, p.section))
                    .collect(),
            }),
        }
    }

    /// Every map the object defines when linked for `abi`, with its (section, offset) key.
    fn all_maps(&self, abi: Abi) -> Result<Vec<(MapDef, usize, u64)>, ExtError> {
        let mut maps = self.map_defs.clone();
        maps.extend(self.abi_map_defs(abi)?);
        for (idx, sec) in self.sections.iter().enumerate() {
            let Some(sec) = sec else { continue };
            if !is_data_section(&sec.name) || sec.size == 0 {
                continue;
            }
            if sec.size > MAX_DATA_SECTION {
                return Err(ExtError::Unsupported(format!(
                    "section {} is {} bytes; data sections are limited to {MAX_DATA_SECTION}",
                    sec.name, sec.size
                )));
            }
            let is_bss = sec.name.starts_with(".bss");
            let mut initial = if is_bss {
                vec![0; sec.size as usize]
            } else {
                sec.data.clone()
            };
            initial.resize(sec.size as usize, 0);
            maps.push((
                MapDef {
                    name: sec.name.clone(),
                    map_type: super::maps::map_type::ARRAY,
                    key_size: 4,
                    value_size: u32::try_from(sec.size).map_err(|_| {
                        ExtError::Unsupported(format!("section {} is too large", sec.name))
                    })?,
                    max_entries: 1,
                    flags: 0,
                    origin: MapOrigin::Data,
                    initial: Some(initial),
                    readonly: sec.name.starts_with(".rodata"),
                },
                idx,
                u64::MAX,
            ));
        }
        Ok(maps)
    }

    /// Links program `prog` (as returned by [`BpfObject::programs`]) for `abi`: copies its
    /// function and every function it calls into one image and lists its map references.
    pub fn link(&self, prog: &ProgramInfo, abi: Abi) -> Result<LinkedProgram, ExtError> {
        let entry = self
            .programs
            .iter()
            .find(|(p, _)| p == prog)
            .map(|(_, f)| *f)
            .ok_or_else(|| ExtError::NoProgram {
                wanted: prog.name.clone(),
                available: Vec::new(),
            })?;
        let maps = self.all_maps(abi)?;

        let mut image: Vec<Insn> = Vec::new();
        let mut placed: BTreeMap<FuncRef, usize> = BTreeMap::new();
        let mut queue = vec![entry];
        let mut functions = Vec::new();
        // (call site in image, target section, target slot in section)
        let mut calls: Vec<(usize, usize, usize)> = Vec::new();
        let mut relocs = Vec::new();

        while let Some(f) = queue.pop() {
            if placed.contains_key(&f) {
                continue;
            }
            let sec = self.section(f.section).expect("function section");
            let base = image.len();
            placed.insert(f, base);
            functions.push(base);
            let bytes = &sec.data[f.start * INSN_SIZE..(f.start + f.len) * INSN_SIZE];
            let insns = super::insn::decode_all(bytes).expect("slot-aligned");
            image.extend_from_slice(&insns);
            let mut i = 0;
            while i < insns.len() {
                let ins = insns[i];
                let byte_off = ((f.start + i) * INSN_SIZE) as u64;
                let reloc = sec.relocs.get(&byte_off).copied();
                let here = format!("section {} insn {} ({})", sec.name, f.start + i, ins);
                if ins.is_ld_imm64() {
                    if i + 1 >= insns.len() {
                        return Err(ExtError::Unsupported(format!(
                            "{here}: ld_imm64 truncated at end of function"
                        )));
                    }
                    if let Some((r_type, sym)) = reloc {
                        if r_type != R_BPF_64_64 {
                            return Err(ExtError::Unsupported(format!(
                                "{here}: relocation type {r_type} on ld_imm64"
                            )));
                        }
                        relocs.push(self.map_reloc(&maps, base + i, ins, sym, &here)?);
                    } else if ins.src != 0 {
                        return Err(ExtError::Unsupported(format!(
                            "{here}: ld_imm64 with source {} and no relocation",
                            ins.src
                        )));
                    }
                    i += 2;
                    continue;
                }
                if ins.is_local_call() {
                    let (tsec, tslot) = match reloc {
                        Some((r_type, sym)) => {
                            if r_type != R_BPF_64_32 && r_type != R_BPF_64_64 {
                                return Err(ExtError::Unsupported(format!(
                                    "{here}: relocation type {r_type} on a call"
                                )));
                            }
                            let s = self.symbols.get(sym).ok_or_else(|| {
                                ExtError::Unsupported(format!(
                                    "{here}: call relocation without a symbol"
                                ))
                            })?;
                            let tsec = s.section.ok_or_else(|| {
                                ExtError::Unsupported(format!(
                                    "{here}: call to undefined function {}",
                                    s.name
                                ))
                            })?;
                            let slot =
                                (s.address / INSN_SIZE as u64) as i64 + i64::from(ins.imm) + 1;
                            (tsec, slot)
                        }
                        None => (f.section, (f.start + i) as i64 + i64::from(ins.imm) + 1),
                    };
                    if tslot < 0 {
                        return Err(ExtError::Unsupported(format!(
                            "{here}: call target before section start"
                        )));
                    }
                    let target = self.function_at(tsec, tslot as usize).ok_or_else(|| {
                        ExtError::Unsupported(format!(
                            "{here}: call target slot {tslot} in section {} is not the start of a function",
                            self.section(tsec).map(|s| s.name.as_str()).unwrap_or("?")
                        ))
                    })?;
                    calls.push((base + i, tsec, tslot as usize));
                    queue.push(target);
                } else if let Some((r_type, sym)) = reloc {
                    let sname = self
                        .symbols
                        .get(sym)
                        .map(|s| s.name.as_str())
                        .unwrap_or("?");
                    return Err(ExtError::Unsupported(format!(
                        "{here}: relocation type {r_type} against symbol `{sname}` (externs and kfuncs are not supported)"
                    )));
                }
                if ins.is_call() && ins.src > 1 {
                    return Err(ExtError::Unsupported(format!(
                        "{here}: call kind {} (kfunc calls)",
                        ins.src
                    )));
                }
                i += 1;
            }
        }
        for (site, tsec, tslot) in calls {
            let f = self.function_at(tsec, tslot).expect("checked above");
            let target = placed[&f] + (tslot - f.start);
            let rel = target as i64 - site as i64 - 1;
            image[site].imm = i32::try_from(rel)
                .map_err(|_| ExtError::Unsupported("program too large".into()))?;
        }
        functions.sort_unstable();
        let (image, functions) = order_callers_first(image, functions, &mut relocs);
        Ok(LinkedProgram {
            name: prog.name.clone(),
            section: prog.section.clone(),
            abi,
            insns: image,
            functions,
            maps: maps.into_iter().map(|(m, _, _)| m).collect(),
            relocs,
        })
    }

    fn function_at(&self, sec: usize, slot: usize) -> Option<FuncRef> {
        let funcs = self.functions_in(sec);
        if funcs.is_empty() {
            let n = self.section(sec)?.data.len() / INSN_SIZE;
            return (slot < n && self.section(sec)?.exec).then_some(FuncRef {
                section: sec,
                start: slot,
                len: n - slot,
            });
        }
        funcs.into_iter().map(|(f, _)| f).find(|f| f.start == slot)
    }

    fn map_reloc(
        &self,
        maps: &[(MapDef, usize, u64)],
        insn: usize,
        ins: Insn,
        sym: usize,
        here: &str,
    ) -> Result<MapReloc, ExtError> {
        let s = self
            .symbols
            .get(sym)
            .ok_or_else(|| ExtError::Unsupported(format!("{here}: relocation without a symbol")))?;
        let sec_idx = s.section.ok_or_else(|| {
            ExtError::Unsupported(format!(
                "{here}: reference to undefined symbol `{}` (externs are not supported)",
                s.name
            ))
        })?;
        let sec = self.section(sec_idx).ok_or_else(|| {
            ExtError::Elf(format!(
                "{here}: symbol `{}` names a missing section",
                s.name
            ))
        })?;
        let off = s.address.wrapping_add(i64::from(ins.imm) as u64);
        // A map definition at exactly this (section, offset).
        if let Some(i) = maps
            .iter()
            .position(|(m, ms, mo)| *ms == sec_idx && *mo == off && m.origin != MapOrigin::Data)
        {
            return Ok(MapReloc {
                insn,
                map: i,
                kind: MapRelocKind::Map,
            });
        }
        if is_data_section(&sec.name) {
            let i = maps
                .iter()
                .position(|(m, ms, _)| *ms == sec_idx && m.origin == MapOrigin::Data)
                .ok_or_else(|| {
                    ExtError::Unsupported(format!("{here}: data section {} has no map", sec.name))
                })?;
            let offset = u32::try_from(off)
                .ok()
                .filter(|&o| u64::from(o) < sec.size.max(1))
                .ok_or_else(|| {
                    ExtError::Unsupported(format!(
                        "{here}: offset {off} outside section {}",
                        sec.name
                    ))
                })?;
            return Ok(MapReloc {
                insn,
                map: i,
                kind: MapRelocKind::Value { offset },
            });
        }
        Err(ExtError::Unsupported(format!(
            "{here}: ld_imm64 refers to symbol `{}` in section {}, which is not a map",
            s.name, sec.name
        )))
    }
}

/// Reorders the functions of a linked image so that every function comes after all its
/// callers (bpf-to-bpf calls then all jump forward, which rbpf's interpreter needs). Call
/// offsets and relocation indices follow; an image with recursive calls is left as it is
/// (the verifier and the loader refuse recursion).
fn order_callers_first(
    image: Vec<Insn>,
    functions: Vec<usize>,
    relocs: &mut [MapReloc],
) -> (Vec<Insn>, Vec<usize>) {
    let n = functions.len();
    if n < 2 {
        return (image, functions);
    }
    let block_of = |pc: usize| functions.iter().rposition(|&s| s <= pc).unwrap_or(0);
    let end_of = |b: usize| functions.get(b + 1).copied().unwrap_or(image.len());
    let mut edges = vec![Vec::new(); n];
    for (pc, ins) in image.iter().enumerate() {
        if ins.is_local_call() {
            let t = pc as i64 + 1 + i64::from(ins.imm);
            if (0..image.len() as i64).contains(&t) {
                edges[block_of(pc)].push(block_of(t as usize));
            }
        }
    }
    // Depth-first postorder from the entry; reversed, callers precede callees.
    fn visit(b: usize, edges: &[Vec<usize>], state: &mut [u8], post: &mut Vec<usize>) -> bool {
        match state[b] {
            1 => return false,
            2 => return true,
            _ => {}
        }
        state[b] = 1;
        for &c in &edges[b] {
            if !visit(c, edges, state, post) {
                return false;
            }
        }
        state[b] = 2;
        post.push(b);
        true
    }
    let mut state = vec![0u8; n];
    let mut post = Vec::new();
    if !visit(0, &edges, &mut state, &mut post) || post.len() != n {
        return (image, functions);
    }
    post.reverse();
    let mut new_pos = vec![0usize; image.len()];
    let mut out = Vec::with_capacity(image.len());
    let mut starts = Vec::with_capacity(n);
    for &b in &post {
        starts.push(out.len());
        for pc in functions[b]..end_of(b) {
            new_pos[pc] = out.len();
            out.push(image[pc]);
        }
    }
    for (pc, ins) in image.iter().enumerate() {
        if ins.is_local_call() {
            let t = (pc as i64 + 1 + i64::from(ins.imm)) as usize;
            out[new_pos[pc]].imm = (new_pos[t] as i64 - new_pos[pc] as i64 - 1) as i32;
        }
    }
    for r in relocs.iter_mut() {
        r.insn = new_pos[r.insn];
    }
    (out, starts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callees_are_placed_after_their_callers() {
        use super::super::insn::op;
        let call = |imm: i32| Insn::new(op::CALL_INSN, 0, op::PSEUDO_CALL, 0, imm);
        let exit = Insn::new(op::EXIT_INSN, 0, 0, 0, 0);
        let ret7 = Insn::new(op::ALU64 | op::MOV, 0, 0, 0, 7);
        // main 0..3 (calls A at 3 and B at 5), A 3..5 (r0 = 7; exit), B 5..7 (calls A
        // backwards; exit).
        let img = vec![call(2), call(3), exit, ret7, exit, call(-3), exit];
        let (out, starts) = order_callers_first(img, vec![0, 3, 5], &mut []);
        assert_eq!(starts, [0, 3, 5]);
        let target = |pc: usize| (pc as i64 + 1 + i64::from(out[pc].imm)) as usize;
        for (pc, ins) in out.iter().enumerate() {
            if ins.is_local_call() {
                assert!(target(pc) > pc, "call at {pc} goes backwards: {out:?}");
            }
        }
        // main calls B then A as before: B's start calls A, and A returns 7.
        assert_eq!(out[target(0)], ret7);
        assert_eq!(out[target(target(1))], ret7);
    }

    #[test]
    fn rejects_non_elf_and_garbage() {
        assert!(BpfObject::parse(b"").is_err());
        assert!(BpfObject::parse(b"\x7fELF garbage").is_err());
    }

    #[test]
    fn section_abi_hints() {
        assert_eq!(abi_for_section("xdp"), Some(Abi::Xdp));
        assert_eq!(abi_for_section("xdp/fw"), Some(Abi::Xdp));
        assert_eq!(abi_for_section(".text"), Some(Abi::Ubpf));
        assert_eq!(abi_for_section("socket"), None);
        assert!(is_data_section(".rodata.str1.1"));
        assert!(is_data_section(".bss"));
        assert!(!is_data_section(".database"));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = BpfObject::parse(&data);
        }
    }
}
