# `enn bench train` end to end on the test device, with tiny shapes: the command exits 0
# (no failure, no validation message), prints a line per model with its throughput,
# and a kernel profile. No timing is checked.

# The device the Criterion suites use (tests/common/harness.c): ENN_TEST_DEVICE, else lavapipe.
if(DEFINED ENV{ENN_TEST_DEVICE} AND NOT "$ENV{ENN_TEST_DEVICE}" STREQUAL "")
  set(ENV{ENN_DEVICE} "$ENV{ENN_TEST_DEVICE}")
else()
  set(ENV{ENN_DEVICE} llvmpipe)
endif()
execute_process(COMMAND ${ENN} bench train --config paper-mnist,paper-lm --steps 1 --warmup 1 --batch 8 --seq 4
                        --profile
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "enn bench train exited with ${rc}")
endif()
foreach(model enn enn-per-sample enn-stop rnn gru lstm)
  if(NOT out MATCHES "paper-mnist +${model} +[0-9]+ +8 +4 +[0-9.]+ samples/s +[0-9.]+ +[1-9][0-9]* +[1-9][0-9]* +[0-9.]+ +[0-9.]+ +[0-9.]+")
    message(FATAL_ERROR "no result line for paper-mnist ${model}")
  endif()
endforeach()
foreach(model enn enn-stop rnn gru lstm)
  if(NOT out MATCHES "paper-lm +${model} +[0-9]+ +8 +4 +[0-9.]+ tokens/s")
    message(FATAL_ERROR "no result line for paper-lm ${model}")
  endif()
endforeach()
if(NOT out MATCHES "sum of kernels +[0-9.]+")
  message(FATAL_ERROR "no kernel profile")
endif()

# Values out of range are refused before any work (atoi once read --steps -1 as four
# billion steps), and so is a GEMM shape whose operands would not fit in host memory.
foreach(args "train;--steps;-1" "train;--batch;4294967297" "train;--steps;1x" "ops;--gemm;-1,1,1"
             "ops;--gemm;65536,65536,65536" "ops;--gemm;8,8,8,0,1,relu+tanh" "ops;--max;100000")
  execute_process(COMMAND ${ENN} bench ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                  TIMEOUT 60)
  if(NOT rc EQUAL 2)
    message(FATAL_ERROR "enn bench ${args}: exit ${rc}, want 2 (a refusal):\n${out}${err}")
  endif()
endforeach()
