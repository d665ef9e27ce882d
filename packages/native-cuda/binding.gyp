{
  # Built by scripts/build.mjs (node-gyp rebuild). cuda_include is the folder holding the CUDA
  # toolkit's cuda.h when the build found one: then cuda_abi_check.cc proves cuda_abi.h matches
  # it. The addon never links libcuda; cuda_loader.cc opens libcuda.so.1 at run time.
  "variables": { "cuda_include%": "" },
  "targets": [
    {
      "target_name": "lakebed_native",
      "sources": [
        "src/native/addon.cc",
        "src/native/driver_core.cc",
        "src/native/host_backend.cc",
        "src/native/cuda_backend.cc",
        "src/native/cuda_loader.cc",
        "src/native/share_socket.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "_GNU_SOURCE"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-ldl"],
      "conditions": [
        ["cuda_include!=''", {
          "sources": ["src/native/cuda_abi_check.cc"],
          "include_dirs": ["<(cuda_include)"]
        }]
      ]
    }
  ]
}
