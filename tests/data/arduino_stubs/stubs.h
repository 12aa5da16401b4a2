// Test-only stand-ins for the Arduino core and the TFLite Micro API the harness sketch uses
// (signatures as in tflite-micro's micro_interpreter.h / micro_mutable_op_resolver.h), so the
// generated sketch compiles with the host's g++ and its serial protocol can be exercised.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

// ---------------------------------------------------------------- Arduino core
class String {
 public:
  String() = default;
  String(const char* s) : s_(s) {}
  String& operator+=(char c) { s_ += c; return *this; }
  bool operator==(const char* o) const { return s_ == o; }
  bool startsWith(const char* p) const { return s_.rfind(p, 0) == 0; }
  unsigned int length() const { return s_.size(); }
  const char* c_str() const { return s_.c_str(); }
  void trim() {
    const char* ws = " \t\r\n";
    s_.erase(0, s_.find_first_not_of(ws));
    s_.erase(s_.find_last_not_of(ws) + 1);
  }
 private:
  std::string s_;
};

class SerialPort {
 public:
  std::string in, out;
  size_t pos = 0;
  void begin(unsigned long) {}
  explicit operator bool() const { return true; }
  int available() const { return static_cast<int>(in.size() - pos); }
  int read() { return pos < in.size() ? in[pos++] : -1; }
  void print(const char* s) { out += s; }
  void print(const String& s) { out += s.c_str(); }
  void print(int v) { out += std::to_string(v); }
  void print(long v) { out += std::to_string(v); }
  void print(unsigned long v) { out += std::to_string(v); }
  void print(double v, int digits = 2) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    out += buf;
  }
  template <typename T> void println(T v) { print(v); out += "\r\n"; }
  void println(double v, int digits) { print(v, digits); out += "\r\n"; }
  void println() { out += "\r\n"; }
};
extern SerialPort Serial;
unsigned long micros();

// ---------------------------------------------------------------- TFLite Micro
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
typedef enum { kTfLiteFloat32 = 1, kTfLiteInt16 = 7, kTfLiteInt8 = 9 } TfLiteType;
struct TfLiteQuantizationParams { float scale; int32_t zero_point; };
union TfLitePtrUnion { float* f; int8_t* int8; int16_t* i16; void* raw; };
struct TfLiteTensor { TfLiteType type; TfLitePtrUnion data; size_t bytes; TfLiteQuantizationParams params; };

#define TFLITE_SCHEMA_VERSION (3)
namespace tflite {
struct Model { uint32_t version() const { return TFLITE_SCHEMA_VERSION; } };
inline const Model* GetModel(const void*) { static Model m; return &m; }
inline void InitializeTarget() {}

// Stand-in interpreter: a fixed (1, 99, 1) int8 input and a
// (1, 1) int8 output whose value is the input sum clamped, so the protocol carries real numbers.
class MicroInterpreter {
 public:
  template <typename Resolver>
  MicroInterpreter(const Model*, const Resolver&, uint8_t* arena, size_t arena_size)
      : arena_(arena), arena_size_(arena_size) {}
  TfLiteStatus AllocateTensors() {
    if (arena_size_ < 4096) return kTfLiteError;
    in_ = TfLiteTensor{kTfLiteInt8, {}, 99, {0.05f, 3}};
    in_.data.int8 = reinterpret_cast<int8_t*>(arena_);
    out_ = TfLiteTensor{kTfLiteInt8, {}, 1, {0.25f, -2}};
    out_.data.int8 = reinterpret_cast<int8_t*>(arena_ + 128);
    return kTfLiteOk;
  }
  TfLiteStatus Invoke() {
    int sum = 0;
    for (int i = 0; i < 99; ++i) sum += in_.data.int8[i];
    out_.data.int8[0] = static_cast<int8_t>(sum > 127 ? 127 : sum < -128 ? -128 : sum);
    return kTfLiteOk;
  }
  TfLiteTensor* input(size_t) { return &in_; }
  TfLiteTensor* output(size_t) { return &out_; }
  size_t arena_used_bytes() const { return 4096; }
 private:
  uint8_t* arena_;
  size_t arena_size_;
  TfLiteTensor in_{}, out_{};
};
}  // namespace tflite
