//! wgpu-conv inside your own wgpu program: your device and queue, your buffers, your encoder.
//! A pass of yours fills the input, the convolution is recorded after it in the same encoder,
//! and your own copy reads the result back; one submission.
//!
//! `cargo run --release --example own_device`

use wgpu_conv::{Conv2dOptions, GpuContext, GpuTensor, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // your program's device: any adapter, any limits it asks for
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("my device"),
        required_limits: adapter.limits(),
        ..Default::default()
    }))?;
    let ctx = GpuContext::from_device(device.clone(), queue.clone(), adapter.get_info())?;
    println!("on {}", ctx.describe());

    let g = Conv2dOptions::new()
        .padding(1)
        .resolve([1, 2, 8, 8], [4, 2, 3, 3])?;
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
    let buffer = |label, n: usize| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (n * 4) as u64,
            usage,
            mapped_at_creation: false,
        })
    };
    let source = buffer("my source", 128);
    let x_buf = buffer("my input", 128);
    let y_buf = buffer("my output", 256);
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("my staging"),
        size: 256 * 4,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let data: Vec<f32> = (0..128).map(|i| (i % 9) as f32).collect();
    queue.write_buffer(&source, 0, bytemuck::cast_slice(&data));

    let x = GpuTensor::from_buffer(x_buf.clone(), &g.input_shape())?;
    let y = GpuTensor::from_buffer(y_buf.clone(), &g.output_shape())?;
    let w = ctx.upload(&Tensor::from_fn([4, 2, 3, 3], |i| {
        if i[2] == 1 && i[3] == 1 {
            1.0
        } else {
            0.0
        }
    })?)?;

    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("my frame"),
    });
    encoder.copy_buffer_to_buffer(&source, 0, &x_buf, 0, 128 * 4); // "your own pass"
    ctx.record_forward(&mut encoder, &g, &x, &w, None, &y)?;
    encoder.copy_buffer_to_buffer(&y_buf, 0, &staging, 0, 256 * 4);
    queue.submit([encoder.finish()]);

    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.expect("map"));
    device.poll(wgpu::PollType::wait_indefinitely())?;
    let out: Vec<f32> = bytemuck::cast_slice(&staging.slice(..).get_mapped_range()?).to_vec();
    // the kernel picks the centre tap of both input channels: each output is their sum
    let want: Vec<f32> = (0..4)
        .flat_map(|_| (0..64).map(|p| data[p] + data[64 + p]))
        .collect();
    assert_eq!(out, want);
    println!(
        "one submission: your copy, the convolution, your readback: {} values as expected",
        out.len()
    );
    Ok(())
}
