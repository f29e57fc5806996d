//! UniFFI's binding generator, built against the same UniFFI version as the
//! library: `uniffi-bindgen generate --library <lib> --language kotlin ...`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
