// The LiteRT C API entry points tflite_runner uses, declared as google-ai-edge/LiteRT's litert/c/*.h declare them
// (commit 19a1585, "Bump LiteRT SDK versions to 2.3.0"): the ai-edge-litert wheel ships libLiteRt.so with these
// symbols (VERS_1.0) but no headers. Handles are opaque; the structs read here are checked for their ABI size.
#pragma once
#include <stddef.h>
#include <stdint.h>
extern "C" {
typedef struct LiteRtEnvironmentT* LiteRtEnvironment;
typedef struct LiteRtModelT* LiteRtModel;
typedef struct LiteRtSignatureT* LiteRtSignature;
typedef struct LiteRtTensorT* LiteRtTensor;
typedef struct LiteRtOptionsT* LiteRtOptions;
typedef struct LiteRtOpaqueOptionsT* LiteRtOpaqueOptions;
typedef struct LiteRtCompiledModelT* LiteRtCompiledModel;
typedef struct LiteRtTensorBufferT* LiteRtTensorBuffer;
typedef struct LiteRtTensorBufferRequirementsT* LiteRtTensorBufferRequirements;
typedef struct LiteRtProfilerT* LiteRtProfiler;
typedef size_t LiteRtParamIndex;
typedef int LiteRtHwAcceleratorSet;

typedef enum {
  kLiteRtStatusOk = 0, kLiteRtStatusErrorInvalidArgument = 1, kLiteRtStatusErrorMemoryAllocationFailure = 2,
  kLiteRtStatusErrorRuntimeFailure = 3, kLiteRtStatusErrorMissingInputTensor = 4, kLiteRtStatusErrorUnsupported = 5,
  kLiteRtStatusErrorNotFound = 6, kLiteRtStatusErrorTimeoutExpired = 7, kLiteRtStatusErrorWrongVersion = 8,
  kLiteRtStatusErrorUnknown = 9, kLiteRtStatusErrorAlreadyExists = 10, kLiteRtStatusCancelled = 100,
  kLiteRtStatusErrorFileIO = 500, kLiteRtStatusErrorInvalidFlatbuffer = 501, kLiteRtStatusErrorDynamicLoading = 502,
  kLiteRtStatusErrorSerialization = 503, kLiteRtStatusErrorCompilation = 504, kLiteRtStatusErrorIndexOOB = 1000,
  kLiteRtStatusErrorInvalidIrType = 1001, kLiteRtStatusErrorInvalidGraphInvariant = 1002,
  kLiteRtStatusErrorGraphModification = 1003, kLiteRtStatusErrorInvalidToolConfig = 1500,
  kLiteRtStatusLegalizeNoMatch = 2000, kLiteRtStatusErrorInvalidLegalization = 2001,
  kLiteRtStatusPatternNoMatch = 3000, kLiteRtStatusInvalidTransformation = 3001,
  kLiteRtStatusErrorUnsupportedRuntimeVersion = 4000, kLiteRtStatusErrorUnsupportedCompilerVersion = 4001,
  kLiteRtStatusErrorIncompatibleByteCodeVersion = 4002, kLiteRtStatusErrorUnsupportedOpShapeInferer = 5000,
  kLiteRtStatusErrorShapeInferenceFailed = 5001,
} LiteRtStatus;  // no exported LiteRtGetStatusString: map to strings yourself

typedef enum { kLiteRtHwAcceleratorNone = 0, kLiteRtHwAcceleratorCpu = 1 << 0,
               kLiteRtHwAcceleratorGpu = 1 << 1, kLiteRtHwAcceleratorNpu = 1 << 2 } LiteRtHwAccelerators;
typedef enum { kLiteRtTensorBufferLockModeRead = 0, kLiteRtTensorBufferLockModeWrite = 1,
               kLiteRtTensorBufferLockModeReadWrite = 2 } LiteRtTensorBufferLockMode;
typedef enum { kLiteRtTensorBufferTypeUnknown = 0, kLiteRtTensorBufferTypeHostMemory = 1
               /* 2=Ahwb 3=Ion 4=DmaBuf 5=FastRpc 6/7=Gl 10-16 OpenCL 20-26 WebGPU 30-34 Metal 40-46 Vulkan */
             } LiteRtTensorBufferType;
typedef enum {
  kLiteRtElementTypeNone = 0, kLiteRtElementTypeFloat32 = 1, kLiteRtElementTypeInt32 = 2, kLiteRtElementTypeUInt8 = 3,
  kLiteRtElementTypeInt64 = 4, kLiteRtElementTypeTfString = 5, kLiteRtElementTypeBool = 6, kLiteRtElementTypeInt16 = 7,
  kLiteRtElementTypeComplex64 = 8, kLiteRtElementTypeInt8 = 9, kLiteRtElementTypeFloat16 = 10,
  kLiteRtElementTypeFloat64 = 11, kLiteRtElementTypeComplex128 = 12, kLiteRtElementTypeUInt64 = 13,
  kLiteRtElementTypeTfResource = 14, kLiteRtElementTypeTfVariant = 15, kLiteRtElementTypeUInt32 = 16,
  kLiteRtElementTypeUInt16 = 17, kLiteRtElementTypeInt4 = 18, kLiteRtElementTypeBFloat16 = 19,
  kLiteRtElementTypeInt2 = 20, kLiteRtElementTypeUInt4 = 21, kLiteRtElementTypeFloat8E4M3FN = 22,
  kLiteRtElementTypeFloat8E5M2 = 23,
} LiteRtElementType;  // == TfLiteType values
typedef enum { kLiteRtRankedTensorType = 0, kLiteRtUnrankedTensorType = 1 } LiteRtTensorTypeId;

#define LITERT_TENSOR_MAX_RANK 8
typedef struct {
  unsigned int rank : 7;                        // number of dims
  unsigned int has_strides : 1;                 // strides[] valid only if set
  int32_t dimensions[LITERT_TENSOR_MAX_RANK];   // <0 = dynamic dim
  uint32_t strides[LITERT_TENSOR_MAX_RANK];
} LiteRtLayout;                                 // sizeof 68, dimensions@4, strides@36
typedef struct { LiteRtElementType element_type; LiteRtLayout layout; } LiteRtRankedTensorType;  // sizeof 72
typedef struct { float scale; int64_t zero_point; } LiteRtQuantizationPerTensor;                 // sizeof 16
typedef enum { kLiteRtQuantizationNone = 0, kLiteRtQuantizationPerTensor = 1, kLiteRtQuantizationPerChannel = 2,
               kLiteRtQuantizationBlockWise = 3 } LiteRtQuantizationTypeId;

// Environment options (optional). LiteRtAny = {int type; union{bool;int64_t;double;const char*;const void*}} = 16 B.
typedef struct { int type; /* 2 = kLiteRtAnyTypeInt */ union { int64_t int_value; const void* ptr_value; }; } LiteRtAny;
typedef struct { int tag; LiteRtAny value; } LiteRtEnvOption;  // sizeof 24, value@8
enum { kLiteRtEnvOptionTagAutoRegisterAccelerators = 24,      // int bitmask of LiteRtHwAccelerators
       kLiteRtEnvOptionTagMinLoggerSeverity = 25 };           // int: -1 dbg,0 verbose,1 info,2 warn,3 error,4 silent

LiteRtStatus LiteRtCreateEnvironment(int num_options, const LiteRtEnvOption* options, LiteRtEnvironment* environment);
void LiteRtDestroyEnvironment(LiteRtEnvironment environment);

LiteRtStatus LiteRtCreateModelFromFile(LiteRtEnvironment environment, const char* filename, LiteRtModel* model);
void LiteRtDestroyModel(LiteRtModel model);
LiteRtStatus LiteRtGetNumModelSignatures(LiteRtModel model, LiteRtParamIndex* num_signatures);
LiteRtStatus LiteRtGetModelSignature(LiteRtModel model, LiteRtParamIndex signature_index, LiteRtSignature* signature);
LiteRtStatus LiteRtGetSignatureKey(LiteRtSignature signature, const char** signature_key);
LiteRtStatus LiteRtGetNumSignatureInputs(LiteRtSignature signature, LiteRtParamIndex* num_inputs);
LiteRtStatus LiteRtGetNumSignatureOutputs(LiteRtSignature signature, LiteRtParamIndex* num_outputs);
LiteRtStatus LiteRtGetSignatureInputName(LiteRtSignature signature, LiteRtParamIndex input_idx, const char** input_name);
LiteRtStatus LiteRtGetSignatureOutputName(LiteRtSignature signature, LiteRtParamIndex output_idx, const char** output_name);
LiteRtStatus LiteRtGetSignatureInputTensorByIndex(LiteRtSignature signature, LiteRtParamIndex input_idx, LiteRtTensor* tensor);
LiteRtStatus LiteRtGetSignatureOutputTensorByIndex(LiteRtSignature signature, LiteRtParamIndex output_idx, LiteRtTensor* tensor);
LiteRtStatus LiteRtGetSignatureInputTensor(LiteRtSignature signature, const char* input_name, LiteRtTensor* tensor);
LiteRtStatus LiteRtGetSignatureOutputTensor(LiteRtSignature signature, const char* output_name, LiteRtTensor* tensor);
LiteRtStatus LiteRtGetTensorName(LiteRtTensor tensor, const char** name);
LiteRtStatus LiteRtGetTensorTypeId(LiteRtTensor tensor, LiteRtTensorTypeId* type_id);
LiteRtStatus LiteRtGetRankedTensorType(LiteRtTensor tensor, LiteRtRankedTensorType* ranked_tensor_type);
LiteRtStatus LiteRtGetQuantizationTypeId(LiteRtTensor tensor, LiteRtQuantizationTypeId* q_type_id);
LiteRtStatus LiteRtGetPerTensorQuantization(LiteRtTensor tensor, LiteRtQuantizationPerTensor* per_tensor_quantization);

LiteRtStatus LiteRtCreateOptions(LiteRtOptions* options);
void LiteRtDestroyOptions(LiteRtOptions options);  // also destroys attached opaque options
LiteRtStatus LiteRtSetOptionsHardwareAccelerators(LiteRtOptions options, LiteRtHwAcceleratorSet hardware_accelerators);
LiteRtStatus LiteRtCreateOpaqueOptions(const char* payload_identifier, void* payload_data,
                                       void (*payload_destructor)(void* payload_data), LiteRtOpaqueOptions* options);
void LiteRtDestroyOpaqueOptions(LiteRtOpaqueOptions options);  // only if NOT added to LiteRtOptions
LiteRtStatus LiteRtAddOpaqueOptions(LiteRtOptions options, LiteRtOpaqueOptions opaque_options);  // takes ownership

LiteRtStatus LiteRtCreateCompiledModel(LiteRtEnvironment environment, LiteRtModel model,
                                       LiteRtOptions compilation_options, LiteRtCompiledModel* compiled_model);
void LiteRtDestroyCompiledModel(LiteRtCompiledModel compiled_model);
LiteRtStatus LiteRtGetCompiledModelInputBufferRequirements(LiteRtCompiledModel compiled_model,
    LiteRtParamIndex signature_index, LiteRtParamIndex input_index, LiteRtTensorBufferRequirements* buffer_requirements);
LiteRtStatus LiteRtGetCompiledModelOutputBufferRequirements(LiteRtCompiledModel compiled_model,
    LiteRtParamIndex signature_index, LiteRtParamIndex output_index, LiteRtTensorBufferRequirements* buffer_requirements);
LiteRtStatus LiteRtGetTensorBufferRequirementsBufferSize(LiteRtTensorBufferRequirements requirements, size_t* buffer_size);
LiteRtStatus LiteRtRunCompiledModel(LiteRtCompiledModel compiled_model, LiteRtParamIndex signature_index,
    size_t num_input_buffers, LiteRtTensorBuffer* input_buffers,
    size_t num_output_buffers, LiteRtTensorBuffer* output_buffers);
LiteRtStatus LiteRtCompiledModelIsFullyAccelerated(LiteRtCompiledModel compiled_model, bool* fully_accelerated);
LiteRtStatus LiteRtCompiledModelGetProfiler(LiteRtCompiledModel compiled_model, LiteRtProfiler* profiler);
LiteRtStatus LiteRtCompiledModelGetErrorMessages(LiteRtCompiledModel compiled_model, char** error_messages); // free()

LiteRtStatus LiteRtCreateManagedTensorBufferFromRequirements(LiteRtEnvironment env,
    const LiteRtRankedTensorType* tensor_type, LiteRtTensorBufferRequirements requirements, LiteRtTensorBuffer* buffer);
LiteRtStatus LiteRtCreateManagedTensorBuffer(LiteRtEnvironment env, LiteRtTensorBufferType buffer_type,
    const LiteRtRankedTensorType* tensor_type, size_t buffer_size, LiteRtTensorBuffer* buffer);
LiteRtStatus LiteRtGetTensorBufferSize(LiteRtTensorBuffer tensor_buffer, size_t* size);
LiteRtStatus LiteRtGetTensorBufferPackedSize(LiteRtTensorBuffer tensor_buffer, size_t* size);  // bytes to r/w
LiteRtStatus LiteRtLockTensorBuffer(LiteRtTensorBuffer tensor_buffer, void** host_mem_addr,
                                    LiteRtTensorBufferLockMode lock_mode);
LiteRtStatus LiteRtUnlockTensorBuffer(LiteRtTensorBuffer buffer);
void LiteRtDestroyTensorBuffer(LiteRtTensorBuffer buffer);

// Profiling (litert/c/litert_profiler.h, litert_profiler_event.h). A compiled model has a profiler only when it was
// compiled with the runtime options payload `enable_profiling = true` (identifier "runtime_options_string", as
// LrtGetOpaqueRuntimeOptionsData writes it); LiteRtCompiledModelGetProfiler then returns it (owned by the compiled
// model), otherwise Ok with NULL. Start resets the event buffer (a ring of 512 * 1024 events); events are read by
// copying them out: tags stay owned by the profiler, valid until the next Start/Reset.
typedef enum LiteRtProfilerEventType {  // == tflite::Profiler::EventType
  DEFAULT = 1,
  OPERATOR_INVOKE_EVENT = 1 << 1,                     // a TFLite node (metadata1 = node index); not a delegate's
                                                      // node when the delegate profiles its own operators
  DELEGATE_OPERATOR_INVOKE_EVENT = 1 << 2,            // a delegate's internal operator (metadata1 = its index)
  DELEGATE_PROFILED_OPERATOR_INVOKE_EVENT = 1 << 3,   // a delegate's operator profiled in place of its node
                                                      // (XNNPACK: metadata1 = XNNPACK operator index)
  GENERAL_RUNTIME_INSTRUMENTATION_EVENT = 1 << 4,     // the interpreter's whole invoke
  TELEMETRY_EVENT = 1 << 5, TELEMETRY_REPORT_SETTINGS = 1 << 6, TELEMETRY_DELEGATE_EVENT = 1 << 7,
  TELEMETRY_DELEGATE_REPORT_SETTINGS = 1 << 8,
} LiteRtProfilerEventType;
typedef struct LiteRtMemoryUsage {
  size_t total_allocated_bytes;
  size_t in_use_allocated_bytes;
  size_t private_footprint_bytes;
} LiteRtMemoryUsage;
typedef enum ProfiledEventSource { LITERT, TFLITE_INTERPRETER, TFLITE_DELEGATE } ProfiledEventSource;
typedef struct ProfiledEventData {
  const char* tag;                     // owned by the profiler
  LiteRtProfilerEventType event_type;
  uint64_t start_timestamp_us;         // 0 for events added with their elapsed time (XNNPACK's operators)
  uint64_t elapsed_time_us;
  LiteRtMemoryUsage begin_mem_usage;
  LiteRtMemoryUsage end_mem_usage;
  uint64_t event_metadata1;
  uint64_t event_metadata2;
  ProfiledEventSource event_source;
} ProfiledEventData;                   // LP64: sizeof 104, elapsed_time_us@24, event_metadata1@80, event_source@96

LiteRtStatus LiteRtStartProfiler(LiteRtProfiler profiler);
LiteRtStatus LiteRtStopProfiler(LiteRtProfiler profiler);
LiteRtStatus LiteRtResetProfiler(LiteRtProfiler profiler);
LiteRtStatus LiteRtGetNumProfilerEvents(LiteRtProfiler profiler, int* num_events);
// num_events: the size of `events`, which must hold all recorded events (else InvalidArgument).
LiteRtStatus LiteRtGetProfilerEvents(LiteRtProfiler profiler, int num_events, ProfiledEventData* events);
LiteRtStatus LiteRtGetProfileSummary(LiteRtProfiler profiler, LiteRtCompiledModel compiled_model, const char** summary);
}  // extern "C"
static_assert(sizeof(LiteRtLayout) == 68 && sizeof(LiteRtRankedTensorType) == 72, "layout ABI");
static_assert(sizeof(LiteRtEnvOption) == 24 && sizeof(LiteRtQuantizationPerTensor) == 16, "ABI");
#if UINTPTR_MAX == UINT64_MAX
static_assert(sizeof(ProfiledEventData) == 104 && offsetof(ProfiledEventData, elapsed_time_us) == 24 &&
              offsetof(ProfiledEventData, event_metadata1) == 80 && offsetof(ProfiledEventData, event_source) == 96,
              "profiler event ABI");
#endif
