// Weight gradient of sum(y * gy), register-blocked first pass of the deterministic reduction:
// each invocation owns 4 output channels x 4 kernel taps (16 weight elements of one group) and
// one slice of the N*OH*OW reduction, which it walks in order, each gy value feeding 4
// multiply-adds and each input value 4. It writes partials[element * slices + slice];
// `reduce_partials` adds them in slice order. No atomics: the result depends only on the shape.
// (conv2d_common.wgsl, with `Params` and `pad_source`, is prepended to this file.)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> grad_output: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;

struct Tap {
    live: bool,
    plane: u32,   // n-independent part of the input plane index: channel
    dy: i32,      // row offset: a*dil_h - pad_top
    dx: i32,      // column offset: b*dil_w - pad_left
    element: u32, // stored weight index within an output channel
}

fn tap(t: u32, grp: u32, taps: u32) -> Tap {
    var r: Tap;
    r.live = t < taps;
    let tt = min(t, taps - 1u);
    let kb = tt % p.s.kw;
    let ka = (tt / p.s.kw) % p.s.kh;
    let ci = tt / (p.s.kw * p.s.kh);
    let a = select(ka, p.s.kh - 1u - ka, p.s.flip != 0u);
    let b = select(kb, p.s.kw - 1u - kb, p.s.flip != 0u);
    r.plane = grp * p.s.cpg + ci;
    r.dy = i32(a * p.s.dil_h) - i32(p.s.pad_top);
    r.dx = i32(b * p.s.dil_w) - i32(p.s.pad_left);
    r.element = tt;
    return r;
}

fn load_tap(tp: Tap, n: u32, iy: i32, ix: i32) -> f32 {
    let sy = pad_source(iy + tp.dy, i32(p.s.h), p.s.pad_mode);
    let sx = pad_source(ix + tp.dx, i32(p.s.w), p.s.pad_mode);
    let ok = tp.live && sy >= 0 && sx >= 0;
    let i = ((n * p.s.c + tp.plane) * p.s.h + u32(max(sy, 0))) * p.s.w + u32(max(sx, 0));
    return select(0.0, x[i], ok);
}

// Dispatched as a 3-D grid: x: slices, y: blocks of 4 taps, z: blocks of 4 output channels.
@compute @workgroup_size(64, 1, 1)
fn conv2d_weight_grad_tiled(@builtin(global_invocation_id) gid: vec3<u32>) {
    let taps = p.s.cpg * p.s.kh * p.s.kw;
    let s = p.base + gid.x;
    let tb = gid.y;
    let ocb = gid.z;
    if s >= p.slices {
        return;
    }
    let ocb_per_group = (p.s.ocpg + 3u) / 4u;
    let grp = ocb / ocb_per_group;
    let o0 = grp * p.s.ocpg + (ocb % ocb_per_group) * 4u;
    let o_last = (grp + 1u) * p.s.ocpg - 1u;
    let g0 = min(o0, o_last);
    let g1 = min(o0 + 1u, o_last);
    let g2 = min(o0 + 2u, o_last);
    let g3 = min(o0 + 3u, o_last);
    let t0 = tap(tb * 4u, grp, taps);
    let t1 = tap(tb * 4u + 1u, grp, taps);
    let t2 = tap(tb * 4u + 2u, grp, taps);
    let t3 = tap(tb * 4u + 3u, grp, taps);

    let len = p.s.n * p.s.oh * p.s.ow;
    let start = s * p.slice_len;
    let end = min(start + p.slice_len, len);
    var ox = start % p.s.ow;
    var oy = (start / p.s.ow) % p.s.oh;
    var n = start / (p.s.ow * p.s.oh);
    let plane = p.s.oh * p.s.ow;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var r = start; r < end; r++) {
        let iy = i32(oy * p.s.stride_h);
        let ix = i32(ox * p.s.stride_w);
        let xv = vec4<f32>(load_tap(t0, n, iy, ix), load_tap(t1, n, iy, ix), load_tap(t2, n, iy, ix), load_tap(t3, n, iy, ix));
        let gbase = n * p.s.oc * plane + oy * p.s.ow + ox;
        acc0 = fma(vec4<f32>(grad_output[gbase + g0 * plane]), xv, acc0);
        acc1 = fma(vec4<f32>(grad_output[gbase + g1 * plane]), xv, acc1);
        acc2 = fma(vec4<f32>(grad_output[gbase + g2 * plane]), xv, acc2);
        acc3 = fma(vec4<f32>(grad_output[gbase + g3 * plane]), xv, acc3);
        ox += 1u;
        if ox == p.s.ow {
            ox = 0u;
            oy += 1u;
            if oy == p.s.oh {
                oy = 0u;
                n += 1u;
            }
        }
    }
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    let elems = vec4<u32>(t0.element, t1.element, t2.element, t3.element);
    let lives = vec4<bool>(t0.live, t1.live, t2.live, t3.live);
    for (var j = 0u; j < 4u; j++) {
        let o = o0 + j;
        if o > o_last {
            break;
        }
        for (var i = 0u; i < 4u; i++) {
            if lives[i] {
                partials[(o * taps + elems[i]) * p.slices + s] = accs[j][i];
            }
        }
    }
}
