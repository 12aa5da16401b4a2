#pragma once
// Stand-in of the Chirale_TensorFlowLite library's top header (Library Manager, version 2.0.0):
// same TFLM API under tensorflow/lite/micro/*.h, another top header name.
#include "stubs.h"
