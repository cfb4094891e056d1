"""Model shapes the GPU benchmarks build with random weights (torch-free, so an orchestrator can import it).

Qwen2-7B-Instruct's and Qwen2-VL-7B-Instruct's released ``config.json`` values.
"""

QWEN2_7B = {"hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
            "intermediate_size": 18944, "vocab_size": 152064, "max_position_embeddings": 32768, "rope_theta": 1e6}  # fmt: skip
QWEN2VL_7B_VISION = {"depth": 32, "embed_dim": 1280, "hidden_size": 3584, "num_heads": 16, "mlp_ratio": 4,
                     "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}  # fmt: skip
QWEN2VL_TINY_VISION = {"depth": 1, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2,
                       "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}  # fmt: skip
