//! How the world's compact integer ids look on the wire. The simulated tables keep ids as
//! integers (cheap to generate and store); the local API servers render them with these
//! functions, and tests use the same functions to compare landed data with the world.

/// Mixpanel `$device_id`: a UUID-shaped string derived from the device number.
pub fn device_uuid(device_id: u64) -> String {
    let b = mix(device_id);
    format!(
        "{:08X}-{:04X}-4{:03X}-{:04X}-{:012X}",
        device_id >> 32,
        (device_id >> 16) & 0xFFFF,
        b & 0xFFF,
        0x8000 | ((b >> 12) & 0x3FFF),
        device_id & 0xFFFF_FFFF_FFFF ^ (b >> 16) & 0xFFFF_0000_0000
    )
}

/// The app's own user id (`customer_user_id` in AppsFlyer, `$user_id` in Mixpanel).
pub fn customer_user_id(login_id: u64) -> String {
    format!("U{login_id:09}")
}

/// Mixpanel `$insert_id`: 16 hex digits.
pub fn insert_id(insert_id: u64) -> String {
    format!("{insert_id:016x}")
}

/// A random-looking UUID for advertising ids (GAID lowercase, IDFA uppercase).
pub fn advertising_uuid(bits: u128, upper: bool) -> String {
    let s = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (bits >> 96) as u32,
        (bits >> 80) as u16,
        ((bits >> 64) as u16) & 0xFFF,
        0x8000 | (((bits >> 48) as u16) & 0x3FFF),
        bits as u64 & 0xFFFF_FFFF_FFFF
    );
    if upper { s.to_uppercase() } else { s }
}

/// SplitMix64 finaliser: a cheap, well-mixed hash of a 64-bit value.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_ids_have_their_shapes() {
        let d = device_uuid(0x0123_4567_89AB_CDEF);
        assert_eq!(d.len(), 36);
        assert_eq!(d.matches('-').count(), 4);
        assert_ne!(device_uuid(1), device_uuid(2));
        assert_eq!(customer_user_id(42), "U000000042");
        assert_eq!(insert_id(255), "00000000000000ff");
        let a = advertising_uuid(u128::MAX / 3, false);
        assert_eq!(a.len(), 36);
        assert_eq!(a, a.to_lowercase());
    }
}
