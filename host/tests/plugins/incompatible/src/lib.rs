//! Test-only library built against another interface version: its own root module type,
//! exported the way plugin-api exports one, but with package version 0.99.0. The host must
//! refuse it, naming both versions.

// abi_stable's derive and export attribute generate unsafe code; none is written here.
#![allow(unsafe_code)]
// abi_stable's generated `ModuleRoot_Ref` is not camel case.
#![allow(non_camel_case_types)]

use abi_stable::library::RootModule;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::{
    declare_root_module_statics, export_root_module, package_version_strings, StableAbi,
};

/// A root module of another shape, from "another version" of the interface.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = ModuleRoot_Ref)))]
#[sabi(missing_field(panic))]
pub struct ModuleRoot {
    #[sabi(last_prefix_field)]
    pub describe: extern "C" fn() -> u32,
}

impl RootModule for ModuleRoot_Ref {
    declare_root_module_statics! {ModuleRoot_Ref}
    const BASE_NAME: &'static str = "game_module";
    const NAME: &'static str = "game_module";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

extern "C" fn describe() -> u32 {
    99
}

#[export_root_module]
fn root_module() -> ModuleRoot_Ref {
    ModuleRoot { describe }.leak_into_prefix()
}
