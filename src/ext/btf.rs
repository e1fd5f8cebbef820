//! A minimal reader of BTF (the BPF Type Format): just enough to decode the map definitions
//! that libbpf-style objects declare in the `.maps` section.
//!
//! A `.maps` definition is a global struct variable whose members encode the map's
//! attributes in their *types*: `__uint(type, BPF_MAP_TYPE_HASH)` is a member of type
//! "pointer to an array of N ints" where N is the value, and `__type(key, struct k)` is a
//! member of type "pointer to struct k" whose size is the key size.

use super::ExtError;

/// BTF kinds used here (the kernel's `BTF_KIND_*`).
mod kind {
    pub const INT: u32 = 1;
    pub const PTR: u32 = 2;
    pub const ARRAY: u32 = 3;
    pub const STRUCT: u32 = 4;
    pub const UNION: u32 = 5;
    pub const ENUM: u32 = 6;
    pub const FWD: u32 = 7;
    pub const TYPEDEF: u32 = 8;
    pub const VOLATILE: u32 = 9;
    pub const CONST: u32 = 10;
    pub const RESTRICT: u32 = 11;
    pub const FUNC: u32 = 12;
    pub const FUNC_PROTO: u32 = 13;
    pub const VAR: u32 = 14;
    pub const DATASEC: u32 = 15;
    pub const FLOAT: u32 = 16;
    pub const DECL_TAG: u32 = 17;
    pub const TYPE_TAG: u32 = 18;
    pub const ENUM64: u32 = 19;
}

/// One decoded BTF type.
#[derive(Clone, Debug)]
struct BtfType {
    name_off: u32,
    kind: u32,
    /// `size` for sized kinds, referenced type id for the others.
    size_or_type: u32,
    /// ARRAY: (element type, index type, number of elements).
    array: Option<(u32, u32, u32)>,
    /// STRUCT/UNION members: (name offset, type id); DATASEC entries: (type id, offset, size)
    /// are stored as (type, offset) with the size in `extra`.
    members: Vec<(u32, u32, u32)>,
}

/// The type section of a `.BTF` blob.
pub struct Btf {
    /// Types indexed by id; index 0 is the void type.
    types: Vec<BtfType>,
    strings: Vec<u8>,
}

/// A map definition read from one `.maps` variable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BtfMapDef {
    /// Variable name (the map's name).
    pub name: String,
    /// `type` attribute (kernel map type number).
    pub map_type: u32,
    /// Key size in bytes (`key_size` or `sizeof(key)`).
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// `max_entries`.
    pub max_entries: u32,
    /// `map_flags`.
    pub map_flags: u32,
}

fn rd_u32(b: &[u8], at: usize) -> Result<u32, ExtError> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
        .ok_or_else(|| ExtError::Btf(format!("truncated at byte {at}")))
}

impl Btf {
    /// Parses a little-endian `.BTF` section.
    pub fn parse(data: &[u8]) -> Result<Btf, ExtError> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != 0xeb9f {
            return Err(ExtError::Btf("bad magic (not little-endian BTF)".into()));
        }
        let hdr_len = rd_u32(data, 4)? as usize;
        let type_off = rd_u32(data, 8)? as usize;
        let type_len = rd_u32(data, 12)? as usize;
        let str_off = rd_u32(data, 16)? as usize;
        let str_len = rd_u32(data, 20)? as usize;
        let tstart = hdr_len
            .checked_add(type_off)
            .ok_or_else(|| ExtError::Btf("type offset overflow".into()))?;
        let sstart = hdr_len
            .checked_add(str_off)
            .ok_or_else(|| ExtError::Btf("string offset overflow".into()))?;
        let tsec = data
            .get(tstart..tstart.saturating_add(type_len))
            .ok_or_else(|| ExtError::Btf("type section out of bounds".into()))?;
        let strings = data
            .get(sstart..sstart.saturating_add(str_len))
            .ok_or_else(|| ExtError::Btf("string section out of bounds".into()))?
            .to_vec();
        let mut types = vec![BtfType {
            name_off: 0,
            kind: 0,
            size_or_type: 0,
            array: None,
            members: Vec::new(),
        }];
        let mut at = 0usize;
        while at < tsec.len() {
            let name_off = rd_u32(tsec, at)?;
            let info = rd_u32(tsec, at + 4)?;
            let size_or_type = rd_u32(tsec, at + 8)?;
            at += 12;
            let vlen = info & 0xffff;
            let k = (info >> 24) & 0x1f;
            let mut t = BtfType {
                name_off,
                kind: k,
                size_or_type,
                array: None,
                members: Vec::new(),
            };
            match k {
                kind::INT | kind::VAR | kind::DECL_TAG => at += 4,
                kind::PTR
                | kind::FWD
                | kind::TYPEDEF
                | kind::VOLATILE
                | kind::CONST
                | kind::RESTRICT
                | kind::FUNC
                | kind::FLOAT
                | kind::TYPE_TAG => {}
                kind::ARRAY => {
                    t.array = Some((
                        rd_u32(tsec, at)?,
                        rd_u32(tsec, at + 4)?,
                        rd_u32(tsec, at + 8)?,
                    ));
                    at += 12;
                }
                kind::STRUCT | kind::UNION => {
                    for _ in 0..vlen {
                        t.members.push((
                            rd_u32(tsec, at)?,
                            rd_u32(tsec, at + 4)?,
                            rd_u32(tsec, at + 8)?,
                        ));
                        at += 12;
                    }
                }
                kind::ENUM => at += 8 * vlen as usize,
                kind::FUNC_PROTO => at += 8 * vlen as usize,
                kind::ENUM64 => at += 12 * vlen as usize,
                kind::DATASEC => {
                    for _ in 0..vlen {
                        t.members.push((
                            rd_u32(tsec, at)?,
                            rd_u32(tsec, at + 4)?,
                            rd_u32(tsec, at + 8)?,
                        ));
                        at += 12;
                    }
                }
                other => {
                    return Err(ExtError::Btf(format!(
                        "unknown BTF kind {other} (type id {})",
                        types.len()
                    )))
                }
            }
            types.push(t);
        }
        Ok(Btf { types, strings })
    }

    fn name(&self, off: u32) -> &str {
        let s = self.strings.get(off as usize..).unwrap_or(&[]);
        let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    fn ty(&self, id: u32) -> Result<&BtfType, ExtError> {
        self.types
            .get(id as usize)
            .ok_or_else(|| ExtError::Btf(format!("type id {id} out of range")))
    }

    /// Follows typedefs and qualifiers to the underlying type id.
    fn resolve(&self, mut id: u32) -> Result<u32, ExtError> {
        for _ in 0..64 {
            let t = self.ty(id)?;
            match t.kind {
                kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                    id = t.size_or_type
                }
                _ => return Ok(id),
            }
        }
        Err(ExtError::Btf(format!("type chain too long at id {id}")))
    }

    /// Size in bytes of a type.
    pub fn size_of(&self, id: u32) -> Result<u32, ExtError> {
        self.size_of_depth(id, 0)
    }

    fn size_of_depth(&self, id: u32, depth: u32) -> Result<u32, ExtError> {
        if depth > 32 {
            return Err(ExtError::Btf(format!(
                "array nesting too deep at type id {id}"
            )));
        }
        let id = self.resolve(id)?;
        let t = self.ty(id)?;
        match t.kind {
            kind::INT
            | kind::STRUCT
            | kind::UNION
            | kind::ENUM
            | kind::FLOAT
            | kind::ENUM64
            | kind::DATASEC => Ok(t.size_or_type),
            kind::PTR => Ok(8),
            kind::ARRAY => {
                let (elem, _, n) = t.array.expect("array info");
                Ok(self.size_of_depth(elem, depth + 1)?.saturating_mul(n))
            }
            k => Err(ExtError::Btf(format!(
                "type id {id} of kind {k} has no size"
            ))),
        }
    }

    /// Decodes the map definitions of the `.maps` data section.
    pub fn maps_section_defs(&self) -> Result<Vec<BtfMapDef>, ExtError> {
        let Some(sec) = self
            .types
            .iter()
            .find(|t| t.kind == kind::DATASEC && self.name(t.name_off) == ".maps")
        else {
            return Err(ExtError::Btf("no DATASEC named .maps".into()));
        };
        let mut out = Vec::new();
        for &(var_id, _off, _size) in &sec.members {
            let var = self.ty(var_id)?;
            if var.kind != kind::VAR {
                return Err(ExtError::Btf(format!(
                    ".maps entry type {var_id} is not a variable"
                )));
            }
            let name = self.name(var.name_off).to_string();
            let sid = self.resolve(var.size_or_type)?;
            let st = self.ty(sid)?;
            if st.kind != kind::STRUCT {
                return Err(ExtError::Btf(format!(
                    "map {name}: definition is not a struct"
                )));
            }
            let mut def = BtfMapDef {
                name: name.clone(),
                ..Default::default()
            };
            for &(mname, mtype, _) in &st.members {
                let mname = self.name(mname);
                // `__uint(x, N)`: pointer to array of N elements.
                let uint_val = || -> Result<u32, ExtError> {
                    let p = self.ty(self.resolve(mtype)?)?;
                    if p.kind != kind::PTR {
                        return Err(ExtError::Btf(format!(
                            "map {name}: attribute {mname} is not __uint()"
                        )));
                    }
                    let a = self.ty(self.resolve(p.size_or_type)?)?;
                    match a.array {
                        Some((_, _, n)) if a.kind == kind::ARRAY => Ok(n),
                        _ => Err(ExtError::Btf(format!(
                            "map {name}: attribute {mname} is not __uint()"
                        ))),
                    }
                };
                // `__type(x, T)`: pointer to T.
                let type_size = || -> Result<u32, ExtError> {
                    let p = self.ty(self.resolve(mtype)?)?;
                    if p.kind != kind::PTR {
                        return Err(ExtError::Btf(format!(
                            "map {name}: attribute {mname} is not __type()"
                        )));
                    }
                    self.size_of(p.size_or_type)
                };
                match mname {
                    "type" => def.map_type = uint_val()?,
                    "max_entries" => def.max_entries = uint_val()?,
                    "map_flags" => def.map_flags = uint_val()?,
                    "key_size" => def.key_size = uint_val()?,
                    "value_size" => def.value_size = uint_val()?,
                    "key" => def.key_size = type_size()?,
                    "value" => def.value_size = type_size()?,
                    "pinning" | "numa_node" | "map_extra" => {}
                    other => {
                        return Err(ExtError::Unsupported(format!(
                            "map {name} in section .maps: attribute `{other}` (map-in-map, program arrays and \
                             similar are not supported)"
                        )))
                    }
                }
            }
            out.push(def);
        }
        Ok(out)
    }
}
