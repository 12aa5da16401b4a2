"""Stand-in for NVIDIA `trtexec`, for tests only (it runs no model and needs no GPU).

A test copies this file into a temporary PATH directory as `trtexec` with a first line
`#!<python>` and the settings below filled in (`{{VERSION}}` "8.6.1" / "10.3.0" / "11.0.0",
`{{BUILD}}` the banner's build tag or "", `{{COV_PCT}}` a GPU-time coefficient of variance).
It reproduces what the real tool does with the options the harness passes, per version
(tests/data/tools/README.md lists the sources):

* the banner `&&&& RUNNING TensorRT.trtexec [TensorRT v<code>] [<build>] # <command>` on stdout,
  then `&&&& PASSED` / `&&&& FAILED`;
* log lines `[MM/DD/YYYY-HH:MM:SS] [I] ...` on stdout, `[W]` and `[E]` on stderr
  (samples/common/logging.h: severity >= kINFO → std::cout, else std::cerr);
* an option it does not know: `[E] Unknown option: --fp16 ` on stderr, the help on stdout,
  exit 1. TensorRT 11 has no precision flags (--fp16, --int8, --best) and adds
  --includeDataTransfers; 8.6 and 10.x do not know --includeDataTransfers;
* data transfers on by default below 11, off from 11 ("Data transfers: Disabled", H2D/D2H 0 and
  "Latency" equal to GPU compute time) unless --includeDataTransfers;
* the stability warning `* GPU compute time is unstable, with coefficient of variance = X%.`
  on stderr when the coefficient of variance exceeds 1 %;
* --exportTimes / --exportProfile JSON in the layout of that version; --saveEngine writes a file
  that --loadEngine later requires.

Every invocation is appended to `trtexec.calls.jsonl` next to the executable (test bookkeeping).
"""
import json
import os
import sys
import time

VERSION = "{{VERSION}}"
BUILD = "{{BUILD}}"
COV_PCT = float("{{COV_PCT}}")

MAJOR, MINOR, PATCH = (int(p) for p in VERSION.split("."))
CODE = MAJOR * (10000 if MAJOR >= 10 else 1000) + MINOR * 100 + PATCH
BANNER = "TensorRT.trtexec [TensorRT v%d]%s" % (CODE, " [%s]" % BUILD if BUILD else "")
COMMON = {"onnx", "saveEngine", "loadEngine", "warmUp", "duration", "iterations", "exportTimes",
          "exportProfile", "dumpProfile", "useSpinWait", "useCudaGraph", "help", "h",
          "noTF32", "avgRuns", "percentile", "shapes", "verbose", "skipInference"}
if MAJOR >= 11:
    KNOWN = COMMON | {"includeDataTransfers", "noCudaGraph", "separateProfileRun",
                      "stronglyTyped"}
else:
    KNOWN = COMMON | {"fp16", "int8", "best", "noDataTransfers", "separateProfileRun",
                      "stronglyTyped", "calib"}
GPU_MS = [0.4736 + 0.0004 * (i % 67) + (0.9 if i % 97 == 96 else 0.0) for i in range(400)]
H2D_MS, D2H_MS = 0.00878906, 0.00927734
LAYERS = [("Reformatting CopyNode for Input Tensor 0 to cnn/conv1d/Conv1D", 0.0109076, 2.13),
          ("cnn/conv1d/Conv1D + cnn/conv1d/Relu", 0.0715512, 14.0),
          ("cnn/dense/MatMul + cnn/dense/Relu", 0.300404, 58.77),
          ("cnn/dense_1/MatMul", 0.128241, 25.1)]


def stamp():
    return time.strftime("[%m/%d/%Y-%H:%M:%S]")


def info(text):
    sys.stdout.write("%s [I] %s\n" % (stamp(), text))


def warn(text):
    sys.stderr.write("%s [W] %s\n" % (stamp(), text))


def error(text):
    sys.stderr.write("%s [E] %s\n" % (stamp(), text))


def finish(command, ok):
    sys.stdout.write("&&&& %s %s # %s\n" % ("PASSED" if ok else "FAILED", BANNER, command))
    sys.stdout.flush()
    sys.exit(0 if ok else 1)


def usage():
    sys.stdout.write("=== Model Options ===\n  --onnx=<file>               ONNX model\n\n"
                     "=== Build Options ===\n  --saveEngine=<file>         Save the serialized "
                     "engine\n  --loadEngine=<file>         Load a serialized engine\n")


def stats_line(name, values):
    ordered = sorted(values)

    def pct(p):
        return ordered[min(len(ordered) - 1, int(p / 100.0 * len(ordered)))]
    mean = sum(values) / len(values)
    median = ordered[len(ordered) // 2]
    percentiles = (90, 95, 99) if (MAJOR, MINOR) >= (8, 6) else (99,)
    text = "%s: min = %g ms, max = %g ms, mean = %g ms, median = %g ms" % (
        name, ordered[0], ordered[-1], mean, median)
    for p in percentiles:
        text += ", percentile(%d%%) = %g ms" % (p, pct(p))
    info(text)


def main():
    args = sys.argv[1:]
    command = " ".join(["trtexec"] + args)
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "trtexec.calls.jsonl"),
              "a") as log:
        log.write(json.dumps({"version": VERSION, "argv": args, "cwd": os.getcwd()}) + "\n")
    options = {}
    for arg in args:
        name, _, value = arg.lstrip("-").partition("=")
        options[name] = value
    sys.stdout.write("&&&& RUNNING %s # %s\n" % (BANNER, command))
    unknown = [a for a in args if a.lstrip("-").partition("=")[0] not in KNOWN]
    if unknown:
        for arg in unknown:
            name, _, value = arg.partition("=")
            error("Unknown option: %s %s" % (name, value))
        usage()
        finish(command, False)
    if "help" in options or "h" in options:
        usage()
        finish(command, True)
    transfers = "includeDataTransfers" in options if MAJOR >= 11 else \
        "noDataTransfers" not in options
    info("=== Build Options ===")
    if MAJOR >= 11:
        info("Precision: Strongly Typed")
    else:
        info("Precision: FP32%s%s" % ("+FP16" if "fp16" in options else "",
                                      "+INT8" if "int8" in options else ""))
    info("=== Inference Options ===")
    info("Iterations: %s" % options.get("iterations", "10"))
    info("Duration: %ss (+ %sms warm up)" % (options.get("duration", "3"),
                                              options.get("warmUp", "200")))
    info("Data transfers: %s" % ("Enabled" if transfers else "Disabled"))
    if MAJOR < 11:
        info("Separate profiling: %s" % ("Enabled" if "separateProfileRun" in options
                                         else "Disabled"))
    info("TensorRT version: %s" % VERSION)
    if "loadEngine" in options:
        if not os.path.isfile(options["loadEngine"]):
            error("Error opening engine file: %s" % options["loadEngine"])
            error("Failed to create engine from model or file.")
            error("Engine set up failed")
            finish(command, False)
    elif "onnx" in options:
        if not os.path.isfile(options["onnx"]):
            error("[TRT] ModelImporter.cpp:88: Failed to parse ONNX model from file: %s"
                  % options["onnx"])
            error("Failed to parse onnx file")
            error("Engine set up failed")
            finish(command, False)
        if "int8" in options and "calib" not in options:
            warn("[TRT] Calibrator is not being used. Users must provide dynamic range for all "
                 "tensors that are not Int32 or Bool.")
        if options.get("saveEngine"):
            with open(options["saveEngine"], "w") as engine:
                engine.write("stand-in engine, TensorRT %s\n" % VERSION)
            info("Engine built in 1.2 sec.")
    else:
        error("Model missing or format not recognized")
        finish(command, False)
    count = max(int(options.get("iterations", "10")), 40)
    gpu = GPU_MS[:count]
    h2d = [H2D_MS if transfers else 0.0] * count
    d2h = [D2H_MS if transfers else 0.0] * count
    latency = [g + a + b for g, a, b in zip(gpu, h2d, d2h)]
    info("Starting inference")
    info("Timing trace has %d queries over 3.00094 s" % count)
    info("")
    info("=== Performance summary ===")
    info("Throughput: %g qps" % (1000.0 / (sum(latency) / count)))
    stats_line("Latency", latency)
    stats_line("Enqueue Time", [0.2 + 0.0001 * (i % 7) for i in range(count)])
    stats_line("H2D Latency", h2d)
    stats_line("GPU Compute Time", gpu)
    stats_line("D2H Latency", d2h)
    info("Total Host Walltime: 3.00094 s")
    info("Total GPU Compute Time: %g s" % (sum(gpu) / 1000.0))
    if COV_PCT > 1.0:
        warn("* GPU compute time is unstable, with coefficient of variance = %g%%." % COV_PCT)
        warn("  If not already in use, locking GPU clock frequency or adding --useSpinWait may "
             "improve the stability.")
    info("Explanations of the performance metrics are printed in the verbose logs.")
    if options.get("exportTimes"):
        records, t = [], 0.0
        for g, a, b in zip(gpu, h2d, d2h):
            if MAJOR >= 10:
                record = {"startEnqMs": t, "endEnqMs": t + 0.2, "startH2dMs": t,
                          "endH2dMs": t + a, "startComputeMs": t + a,
                          "endComputeMs": t + a + g, "startD2hMs": t + a + g,
                          "endD2hMs": t + a + g + b, "h2dMs": a, "computeMs": g, "d2hMs": b,
                          "latencyMs": a + g + b, "endToEndMs": a + g + b}
            else:
                record = {"startEnqMs": t, "endEnqMs": t + 0.2, "startInMs": t,
                          "endInMs": t + a, "startComputeMs": t + a, "endComputeMs": t + a + g,
                          "startOutMs": t + a + g, "endOutMs": t + a + g + b, "inMs": a,
                          "computeMs": g, "outMs": b, "latencyMs": a + g + b,
                          "endToEndMs": a + g + b}
            records.append(record)
            t += 0.6
        with open(options["exportTimes"], "w") as handle:
            json.dump(records, handle, indent=1)
    if options.get("exportProfile"):
        layers = [{"count": count}]
        for name, average, percentage in LAYERS:
            layer = {"name": name, "timeMs": average * count, "averageMs": average,
                     "percentage": percentage}
            if MAJOR >= 10:
                layer["medianMs"] = average * 0.998
            layers.append(layer)
        with open(options["exportProfile"], "w") as handle:
            json.dump(layers, handle, indent=1)
    finish(command, True)


main()
