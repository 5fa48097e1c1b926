"""Ready means the accelerator answers: what the probe's output (over SSH) says, per kind of machine."""
from amazonei_setup.cli.commands.accelerator import expected_kind, summarize

NEURON_LS = """NEURON 0
instance-type: inf2.xlarge
+--------+--------+--------+---------+
| NEURON | NEURON | NEURON |   PCI   |
| DEVICE | CORES  | MEMORY |   BDF   |
+--------+--------+--------+---------+
| 0      | 2      | 32 GB  | 00:1f.0 |
+--------+--------+--------+---------+
"""


def test_a_gpu_answers_with_its_name():
    said = summarize("GPU 0\nGPU 0: NVIDIA A10G (UUID: GPU-3f2a)\n", expected_kind("gpu", None))
    assert said == {"status": "answers", "kind": "GPU", "detail": "GPU: NVIDIA A10G"}
    four = summarize("GPU 0\n" + "".join(f"GPU {i}: Tesla T4 (UUID: GPU-{i})\n" for i in range(4)), "GPU")
    assert four["detail"] == "GPU: 4 x Tesla T4"


def test_neuron_answers_with_its_cores():
    assert summarize(NEURON_LS, expected_kind("inf2", None))["detail"] == "Neuron: 2 cores"


def test_what_did_not_answer_is_said():
    missing = summarize("NONE 0\n", expected_kind("gpu", None))
    assert missing["status"] == "failed" and missing["detail"] == "no accelerator answered (nvidia-smi -L not found)"
    broken = summarize("GPU 9\nNVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", "GPU")
    assert broken["status"] == "failed" and "couldn't communicate with the NVIDIA driver" in broken["detail"]
    wrong = summarize(NEURON_LS, expected_kind("gpu", None))
    assert wrong["status"] == "failed" and "expected nvidia-smi -L to answer" in wrong["detail"]
    assert summarize("EI 0\nAll checks passed\n", expected_kind(None, "eia2.medium"))["detail"] == (
        "EI: the validator passed")
