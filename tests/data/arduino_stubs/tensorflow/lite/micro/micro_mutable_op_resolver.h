#pragma once
#include "stubs.h"
// Stand-in of the library's MicroMutableOpResolver: one Add* method per operator it registers,
// one per line (a test removes a line to play a library that lacks that operator).
namespace tflite {
extern int registered_ops;
template <unsigned int tOpCount>
class MicroMutableOpResolver {
 public:
#define HARNESS_ADD(name) \
  TfLiteStatus name() { return ++registered_ops <= (int)tOpCount ? kTfLiteOk : kTfLiteError; }
  HARNESS_ADD(AddAdd)
  HARNESS_ADD(AddConcatenation)
  HARNESS_ADD(AddConv2D)
  HARNESS_ADD(AddDequantize)
  HARNESS_ADD(AddFullyConnected)
  HARNESS_ADD(AddLogistic)
  HARNESS_ADD(AddMaxPool2D)
  HARNESS_ADD(AddMean)
  HARNESS_ADD(AddMul)
  HARNESS_ADD(AddQuantize)
  HARNESS_ADD(AddRelu)
  HARNESS_ADD(AddReshape)
  HARNESS_ADD(AddSoftmax)
  HARNESS_ADD(AddStridedSlice)
#undef HARNESS_ADD
};
}  // namespace tflite
