// Drives the generated sketch with the stubs: feeds serial input, prints what the sketch wrote.
#include <chrono>
#include <iostream>
#include "stubs.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

SerialPort Serial;
int tflite::registered_ops = 0;
unsigned long micros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}
void setup();
void loop();

int main(int argc, char** argv) {
  setup();
  Serial.in = argc > 1 ? argv[1] : "hello\nrun 3 1\n";
  while (Serial.available() > 0) loop();
  std::cout << Serial.out;
  return 0;
}
