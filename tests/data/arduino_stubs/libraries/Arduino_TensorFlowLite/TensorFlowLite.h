#pragma once
// Stand-in of the Arduino_TensorFlowLite library's top header (tensorflow/tflite-micro-arduino-
// examples): it only names the library, the API comes from tensorflow/lite/micro/*.h.
#include "stubs.h"
