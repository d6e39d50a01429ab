// The layer's shape as override constants, for the kernels that are built per layer shape (a
// pipeline per shape: constant divisors, no variant branches): conv2d_core,
// conv2d_weight_grad_core, conv2d_input_grad_phase. Set by `layer_constants` in
// src/kernels/uniforms.rs; a kernel's own constants follow in its file.
override N: u32;
override C: u32;
override H: u32;
override W: u32;
override OC: u32;
override CPG: u32;
override OCPG: u32;
override KH: u32;
override KW: u32;
override OH: u32;
override OW: u32;
override SH: u32;
override SW: u32;
override DH: u32;
override DW: u32;
override PT: u32;
override PL: u32;
override PAD_MODE: u32;
