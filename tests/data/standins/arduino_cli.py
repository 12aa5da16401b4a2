"""Stand-in for `arduino-cli`, for tests only: no board package, no ARM toolchain, no board.

A test copies this file into a temporary PATH directory as `arduino-cli` with a first line
`#!<python>` and the settings below filled in. It reproduces what the real tool does with the
commands the harness runs (tests/data/tools/README.md lists the sources):

* `version`: "arduino-cli  Version: X Commit: ... Date: ...";
* `lib list --format json`: the installed libraries, in the 1.x layout
  ({"installed_libraries": [{"library": {...}}]}) or the 0.x one (a list);
* `compile --fqbn F --output-dir D SKETCH`: the sketch's .ino, .cpp and .c files (.cc only from
  0.35, arduino-cli#2273) compiled with the host's g++ against the stub headers in STUBS
  (tests/data/arduino_stubs), the .ino prefixed with the core header as the builder does.
  Libraries are found as the builder finds them: only when an #include of their header fails
  (so `__has_include` sees a library only once it is on the include path, arduino-cli#1782).
  The compiler's errors are printed as they come, then "Error during build: exit status 1".
  The program and data sizes are the core's and the library's (settings) plus the model array
  and the tensor arena read from the sketch; over the board's maxima the link fails with the
  GNU ld messages ("region `RAM' overflowed by N bytes"), else the builder's size report:
  "Sketch uses N bytes (P%) of program storage space. Maximum is M bytes." and "Global
  variables use N bytes (P%) of dynamic memory, leaving R bytes for local variables. Maximum is
  M bytes.";
* `upload -p PORT --fqbn F --input-dir D SKETCH`: bossac's lines; "No device found on ttyACM0"
  and exit 1 when PORT does not exist.

Every invocation is appended to `arduino-cli.calls.jsonl` next to the executable.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

VERSION = "{{VERSION}}"
LIBRARY = "{{LIBRARY}}"  # the TFLM library installed: its folder in STUBS/libraries, or ""
LIBRARY_NAME = "{{LIBRARY_NAME}}"  # its name as library.properties spells it
LIBRARY_VERSION = "{{LIBRARY_VERSION}}"
STUBS = "{{STUBS}}"
GPP = "{{GPP}}"
CORE = "{{CORE}}"  # the board platform installed, e.g. arduino:mbed_nano
CORE_VERSION = "4.1.5"
CORE_PROGRAM, CORE_DATA = int("{{CORE_PROGRAM}}"), int("{{CORE_DATA}}")
LIB_PROGRAM, LIB_DATA = int("{{LIB_PROGRAM}}"), int("{{LIB_DATA}}")
PROGRAM_MAX, DATA_MAX = int("{{PROGRAM_MAX}}"), int("{{DATA_MAX}}")
DROP_METHOD = "{{DROP_METHOD}}"  # a resolver method the installed library lacks, or ""

NUMBERS = tuple(int(p) for p in re.findall(r"\d+", VERSION)[:3])
TOOLCHAIN = "/home/pi/.arduino15/packages/arduino/tools/arm-none-eabi-gcc/7-2017q4"


def fail(message):
    sys.stdout.write(message)
    sys.stderr.write("\nError during build: exit status 1\n")
    sys.exit(1)


def options(args):
    found, rest, i = {}, [], 0
    while i < len(args):
        if args[i].startswith("-") and i + 1 < len(args) and not args[i + 1].startswith("-"):
            found[args[i]] = args[i + 1]
            i += 2
        elif args[i].startswith("-"):
            found[args[i]] = ""
            i += 1
        else:
            rest.append(args[i])
            i += 1
    return found, rest


def library_list():
    libraries = []
    if LIBRARY:
        libraries.append({"library": {"name": LIBRARY_NAME, "version": LIBRARY_VERSION,
                                      "location": "user",
                                      "install_dir": "/home/pi/Arduino/libraries/" + LIBRARY_NAME}})
    document = {"installed_libraries": libraries} if NUMBERS >= (1, 0) else libraries
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def stub_tree(work):
    """The stub headers, with DROP_METHOD removed from the resolver when the library lacks it."""
    if not DROP_METHOD:
        return STUBS
    tree = os.path.join(work, "stubs")
    shutil.copytree(STUBS, tree)
    resolver = os.path.join(tree, "tensorflow", "lite", "micro", "micro_mutable_op_resolver.h")
    with open(resolver) as handle:
        lines = [line for line in handle if "HARNESS_ADD(%s)" % DROP_METHOD not in line]
    with open(resolver, "w") as handle:
        handle.writelines(lines)
    return tree


def compile_sketch(fqbn, output_dir, sketch):
    work = tempfile.mkdtemp(prefix="arduino-build-")
    try:
        _compile(fqbn, output_dir, sketch, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _compile(fqbn, output_dir, sketch, work):
    if ":".join(fqbn.split(":")[:2]) != CORE:
        fail("Error during build: Platform '%s' not found: platform not installed\n"
             % ":".join(fqbn.split(":")[:2]))
    name = os.path.basename(os.path.normpath(sketch))
    extensions = (".cpp", ".c", ".cc") if NUMBERS >= (0, 35) else (".cpp", ".c")
    sources = sorted(os.path.join(sketch, f) for f in os.listdir(sketch) if f.endswith(extensions))
    stubs = stub_tree(work)
    build = os.path.join(work, "sketch")
    shutil.copytree(sketch, build)
    main = os.path.join(build, name + ".ino.cpp")
    with open(os.path.join(sketch, name + ".ino")) as handle:
        ino = handle.read()
    with open(main, "w") as handle:
        handle.write('#include "stubs.h"\n#line 1 "%s"\n' % os.path.join(sketch, name + ".ino")
                     + ino)
    includes = [stubs, build]
    libraries = os.path.join(stubs, "libraries", LIBRARY) if LIBRARY else None
    while True:  # library discovery: follow the #include that fails
        probe = subprocess.run([GPP, "-std=c++17", "-E", "-o", os.devnull]
                               + ["-I" + i for i in includes] + [main],
                               capture_output=True, text=True)
        missing = re.search(r"fatal error: ([\w./-]+): No such file or directory", probe.stderr)
        if probe.returncode == 0 or not missing:
            break
        if libraries and os.path.isfile(os.path.join(libraries, missing.group(1))) and \
                libraries not in includes:
            includes.append(libraries)
            continue
        fail(probe.stderr + "compilation terminated.\n")
    elf = os.path.join(output_dir, name + ".ino.elf")
    os.makedirs(output_dir, exist_ok=True)
    built = subprocess.run([GPP, "-std=c++17", "-Wall", "-Wextra", "-Werror"]
                           + ["-I" + i for i in includes]
                           + [main] + [os.path.join(build, os.path.basename(s)) for s in sources]
                           + [os.path.join(STUBS, "main.cc"), "-o", elf],
                           capture_output=True, text=True)
    if built.returncode != 0:
        fail(built.stderr)
    with open(os.path.join(sketch, "model_data.cpp")) as handle:
        model_len = int(re.search(r"g_model_len = (\d+);", handle.read()).group(1))
    arena = int(re.search(r"kTensorArenaSize = (\d+);", ino).group(1))
    program = CORE_PROGRAM + LIB_PROGRAM + model_len
    data = CORE_DATA + LIB_DATA + arena
    ld = TOOLCHAIN + "/bin/../lib/gcc/arm-none-eabi/7.2.1/../../../../arm-none-eabi/bin/ld: "
    if data > DATA_MAX or program > PROGRAM_MAX:
        lines = []
        if program > PROGRAM_MAX:
            lines += [ld + "%s section `.text' will not fit in region `FLASH'" % elf,
                      ld + "region `FLASH' overflowed by %d bytes" % (program - PROGRAM_MAX)]
        if data > DATA_MAX:
            lines += [ld + "%s section `.bss' will not fit in region `RAM'" % elf,
                      ld + "region `RAM' overflowed by %d bytes" % (data - DATA_MAX)]
        fail("\n".join(lines + ["collect2: error: ld returned 1 exit status", ""]))
    with open(os.path.join(output_dir, name + ".ino.bin"), "wb") as handle:
        handle.write(b"\0" * 16)
    sys.stdout.write(
        "Sketch uses %d bytes (%d%%) of program storage space. Maximum is %d bytes.\n"
        % (program, program * 100 // PROGRAM_MAX, PROGRAM_MAX)
        + "Global variables use %d bytes (%d%%) of dynamic memory, leaving %d bytes for local "
          "variables. Maximum is %d bytes.\n" % (data, data * 100 // DATA_MAX, DATA_MAX - data,
                                                DATA_MAX))
    if NUMBERS >= (1, 0):
        sys.stdout.write("\nUsed library %s Version Path\n%s %s /home/pi/Arduino/libraries/%s\n"
                         "\nUsed platform Version Path\n%s %s /home/pi/.arduino15/packages/"
                         "arduino/hardware/%s/%s\n"
                         % (" " * max(0, len(LIBRARY_NAME) - 12), LIBRARY_NAME, LIBRARY_VERSION,
                            LIBRARY_NAME, CORE, CORE_VERSION, CORE.split(":")[1], CORE_VERSION))


def upload(port):
    sys.stdout.write("Performing 1200-bps touch reset on serial port %s\n"
                     "Waiting for upload port...\n" % port)
    if not os.path.exists(port):
        sys.stdout.write("No upload port found, using %s as fallback\n" % port)
        sys.stderr.write("No device found on %s\nFailed uploading: uploading error: exit status "
                         "1\n" % os.path.basename(port))
        sys.exit(1)
    sys.stdout.write("Device       : nRF52840-QIAA\nVersion      : Arduino Bootloader (SAM-BA "
                     "extended) 2.0 [Arduino:IKXYZ]\nErase flash\n\nDone in 0.001 seconds\n"
                     "Write 85336 bytes to flash (21 pages)\n"
                     "[==============================] 100% (21/21 pages)\n"
                     "Done in 3.271 seconds\n")


def main():
    args = sys.argv[1:]
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "arduino-cli.calls.jsonl"),
              "a") as log:
        log.write(json.dumps({"version": VERSION, "argv": args}) + "\n")
    found, rest = options(args[1:])
    if args[:1] == ["version"]:
        sys.stdout.write("arduino-cli  Version: %s Commit: 0f7d3e26 Date: 2024-11-06T08:45:46Z\n"
                         % VERSION)
    elif args[:2] == ["lib", "list"]:
        library_list()
    elif args[:1] == ["compile"]:
        compile_sketch(found.get("--fqbn") or found.get("-b", ""), found["--output-dir"],
                       rest[-1])
    elif args[:1] == ["upload"]:
        upload(found.get("-p") or found.get("--port"))
    else:
        sys.stderr.write("Error: unknown command %r for \"arduino-cli\"\n" % " ".join(args))
        sys.exit(1)


main()
