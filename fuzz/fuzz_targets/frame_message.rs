#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| altafinex_fuzz::frame_message::run(data));
