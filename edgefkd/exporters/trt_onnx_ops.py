"""TensorRT's ONNX operator support, as data (for the static compatibility report).

Transcribed from onnx-tensorrt's `docs/operators.md` ("Supported ONNX Operators", the table
for TensorRT 10.15), with the 8.6 and 11 differences below. Restrictions are paraphrased; only the ones a static
check of a face-recognition graph can act on are kept. The table is the parser's own
claim, not a guarantee that every attribute combination builds.
"""

from __future__ import annotations

TABLE_SOURCE = "onnx/onnx-tensorrt docs/operators.md (TensorRT 10.15; 8.5-GA table + LayerNormalization for 8.6; Swish for 11)"
TABLE_TENSORRT = "10.15"

#: Operators the ONNX parser imports, with the restriction the table states ("" = none).
SUPPORTED: dict[str, str] = {
    **{op: "" for op in (
        "Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh BatchNormalization "
        "BlackmanWindow Cast CastLike Ceil Celu Clip Concat ConstantOfShape Conv ConvTranspose "
        "Constant Cos Cosh DepthToSpace Div Einsum Elu Equal Erf Exp Expand Flatten Floor Gather "
        "GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater "
        "GreaterOrEqual GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish "
        "Identity ImageScaler InstanceNormalization IsInf IsNaN LeakyRelu Less LessOrEqual Log "
        "LogSoftmax LRN LpNormalization MatMul Max Mean MeanVarianceNormalization Min Mish Mod "
        "Mul Neg NonMaxSuppression NonZero Not Or Pad ParametricSoftplus Pow PRelu "
        "RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal Relu "
        "Reshape ReverseSequence RMSNormalization RNN RoiAlign Round ScaledTanh Scan Scatter "
        "ScatterElements Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus "
        "Softsign SpaceToDepth Split Sqrt Sub Sum Tan Tanh ThresholdedRelu Tile Transpose "
        "Trilu Upsample Where Xor"
    ).split()},
    "Attention": "Q, K, V and attn_mask must be 4-D; past/present key-value tensors unsupported",
    "AveragePool": "2-D or 3-D pooling only; dilations must be empty or all ones",
    "CumSum": "axis must be a build-time constant",
    "DeformConv": "1-D or 2-D spatial input; symmetric pads",
    "DequantizeLinear": "x_zero_point must be zero",
    "Dropout": "is_training must be an initializer that evaluates to False",
    "EyeLike": "input must have static dimensions",
    "GridSample": "input must be 4-D",
    "Hardmax": "the axis dimension must be a build-time constant",
    "If": "both branches' outputs must have the same rank and different names",
    "LayerNormalization": "only the first output Y is supported",
    "Loop": "scan output length cannot be dynamic; carried shapes must not change",
    "LSTM": "bidirectional LSTMs need the same activations both ways; input_forget=0; layout=0",
    "LpPool": "dilations must be empty or all ones",
    "MaxPool": "2-D or 3-D pooling only; the Indices output is unsupported; dilations all ones",
    "OneHot": "depth must be a build-time constant",
    "QuantizeLinear": "y_zero_point must be zero",
    **{op: "axes must be an initializer" for op in (
        "ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin "
        "ReduceProd ReduceSum ReduceSumSquare").split()},
    "Resize": "modes nearest/linear only; no antialiasing; aspect ratio policy stretch only",
    "RotaryEmbedding": "position_ids must be INT64",
    "STFT": "frame_step and window must be initializers; real input only",
    "ScatterND": "reduction must be none",
    "Squeeze": "axes must resolve to a constant",
    "TensorScatter": "past_cache and update must be 4-D; axis must be -2",
    "TopK": "sorted must be 1; K below 3840",
    "Unsqueeze": "axes must resolve to a constant",
}

#: Operators the table lists as not supported by the parser.
UNSUPPORTED: frozenset[str] = frozenset((
    "AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Col2Im "
    "CenterCropPad Compress ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear "
    "ImageDecoder MatMulInteger MaxRoiPool MaxUnpool MelWeightMatrix Multinomial "
    "NegativeLogLikelihoodLoss Optional OptionalGetElement OptionalHasElement QLinearConv "
    "QLinearMatMul RegexFullMatch SequenceAt SequenceConstruct SequenceEmpty SequenceErase "
    "SequenceInsert SequenceLength SequenceMap SoftmaxCrossEntropyLoss SplitToSequence "
    "StringConcat StringNormalizer StringSplit TfIdfVectorizer Unique"
).split())

#: Operators marked "Y" in onnx-tensorrt's TensorRT 8.5 table (release/8.5-GA docs/operators.md),
#: plus LayerNormalization, which TensorRT 8.6 added (INormalizationLayer). The 8.6-GA table
#: itself could not be consulted where this was written; 8.6 adds ops, it removed none.
TRT86_SUPPORTED = frozenset((
    "Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast Ceil "
    "Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DepthToSpace "
    "DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather "
    "GatherElements GatherND Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual "
    "GridSample GRU HardSwish HardSigmoid Identity If ImageScaler InstanceNormalization IsNaN LeakyRelu "
    "Less LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean "
    "MeanVarianceNormalization Min Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad "
    "ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform "
    "RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax "
    "ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN "
    "RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin "
    "Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh "
    "ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor LayerNormalization"
).split())

#: Operators only TensorRT 11's parser imports (not in the 10.x table).
TRT11_ONLY: dict[str, str] = {"Swish": "ONNX opset 24 Swish (x * sigmoid(alpha * x))"}

#: The ONNX opsets each parser generation reads (8.6's parser stops at 17, 10.x at 20).
OPSET_RANGES: dict[str, tuple[int, int]] = {"8.6": (9, 17), "10": (9, 20), "11": (9, 24)}

#: Resize attribute values the parser accepts.
RESIZE_MODES = frozenset({"nearest", "linear"})
RESIZE_COORDINATE_MODES = frozenset(
    {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"}
)
RESIZE_NEAREST_MODES = frozenset({"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"})
