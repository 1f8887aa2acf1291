"""The official AttnGAN training iteration (taoxugit/AttnGAN code/trainer.py, condGANTrainer.train's
loop body), timed: CUB config (cfg/bird_attn2.yml: 3 stages to 256 px, GF 32, DF 64, Z 100, R_NUM 2,
EMBEDDING_DIM 256, 18 words, lambda 5), random-weight DAMSM encoders loaded from files as
build_models loads them, random captions and images. Prints one JSON line.

usage: TORCH_PYTHON attngan_official_step.py ATTNGAN_CODE_DIR WORK_DIR [--batch=4] [--steps=5]
         [--warmup=2] [--start=UNIX_TIME] [--prepare]
  --prepare    write WORK_DIR/text_encoder200.pth and image_encoder200.pth (random weights), exit
  --start      the parent's time.time() just before it started this process (set-up is counted
               from it to the end of the first iteration)
(torch and torchvision in a throwaway venv, never the project's; bench/attngan_official.py runs it.)

One iteration, as trainer.py: the frozen text encoder on the captions, one G forward (noise
redrawn), each D's loss on the real images and the detached fakes, its backward and Adam step,
then G's loss through the updated Ds and lambda x (words + sentence) DAMSM losses through the
frozen Inception-v3 image encoder, KL, G's backward and Adam step, the EMA of G's parameters.
Patches for torch 2 (none in the official files, applied to the loaded modules): easydict,
nltk, pandas, skimage stubs; no Inception download (random weights); `.data[0]` on 0-dim losses
-> `.item()`; uint8 masks -> bool (masked_fill_ takes bool masks only); EMA's add_(0.001, p) ->
add_(p, alpha=0.001).
"""
import inspect
import json
import os
import statistics
import sys
import time
import types

import numpy as np

ARGS = dict(a[2:].split("=", 1) if "=" in a else (a[2:], "1") for a in sys.argv[3:])
OFF, WORK = sys.argv[1], sys.argv[2]
BATCH, STEPS = int(ARGS.get("batch", 4)), int(ARGS.get("steps", 5))
WARMUP = max(1, int(ARGS.get("warmup", 2)))
START = float(ARGS.get("start", time.time()))
VOCAB = 5450  # the official CUB captions.pickle's n_words
sys.path.insert(0, OFF)


class EasyDict(dict):
  __getattr__ = dict.__getitem__

  def __setattr__(self, k, v):
    self[k] = v


sys.modules["easydict"] = types.SimpleNamespace(EasyDict=EasyDict)
sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
import torch  # noqa: E402
import torch.optim as optim  # noqa: E402
import torch.utils.model_zoo as model_zoo  # noqa: E402
from torchvision import models  # noqa: E402
# after torch (its import looks for pandas): stubs of modules the official files import, unused here
for name in ("nltk", "nltk.tokenize", "pandas", "skimage", "skimage.transform"):
  sys.modules[name] = types.ModuleType(name)
sys.modules["skimage"].transform = sys.modules["skimage.transform"]
from miscc.config import cfg  # noqa: E402

# cfg/bird_attn2.yml
cfg.CUDA, cfg.TRAIN.FLAG, cfg.TREE.BRANCH_NUM, cfg.TRAIN.BATCH_SIZE = False, True, 3, BATCH
cfg.GAN.DF_DIM, cfg.GAN.GF_DIM, cfg.GAN.Z_DIM, cfg.GAN.R_NUM = 64, 32, 100, 2
cfg.TEXT.EMBEDDING_DIM, cfg.TEXT.WORDS_NUM = 256, 18
cfg.TRAIN.SMOOTH.GAMMA1, cfg.TRAIN.SMOOTH.GAMMA2 = 4.0, 5.0
cfg.TRAIN.SMOOTH.GAMMA3, cfg.TRAIN.SMOOTH.LAMBDA = 10.0, 5.0
cfg.TRAIN.DISCRIMINATOR_LR = cfg.TRAIN.GENERATOR_LR = 0.0002
import model as M  # noqa: E402
from miscc import losses  # noqa: E402
from miscc.utils import weights_init, copy_G_params  # noqa: E402

_inception = models.inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()
model_zoo.load_url = lambda url: _inception  # no download: random weights


def _patched(module, name, replacements):
  """Re-defines module.name from its own source with text replacements (torch 2 API)."""
  source = inspect.getsource(getattr(module, name))
  for old, new in replacements:
    source = source.replace(old, new)
  exec(compile(source, inspect.getsourcefile(module), "exec"), module.__dict__)  # pylint: disable=exec-used


_patched(losses, "sent_loss", [("np.uint8", "bool"), ("torch.ByteTensor", "torch.BoolTensor")])
_patched(losses, "words_loss", [("np.uint8", "bool"), ("torch.ByteTensor", "torch.BoolTensor")])
_patched(losses, "generator_loss", [(".data[0]", ".item()")])


def peak_rss_mb():
  with open("/proc/self/status", encoding="ascii") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) / 1024
  return float("nan")


if "prepare" in ARGS:
  os.makedirs(WORK, exist_ok=True)
  torch.save(M.RNN_ENCODER(VOCAB, nhidden=cfg.TEXT.EMBEDDING_DIM).state_dict(),
             os.path.join(WORK, "text_encoder200.pth"))
  torch.save(M.CNN_ENCODER(cfg.TEXT.EMBEDDING_DIM).state_dict(),
             os.path.join(WORK, "image_encoder200.pth"))
  print(json.dumps({"prepared": WORK}))
  sys.exit(0)

# --- condGANTrainer.build_models / define_optimizers / prepare_labels
image_encoder = M.CNN_ENCODER(cfg.TEXT.EMBEDDING_DIM)
image_encoder.load_state_dict(torch.load(os.path.join(WORK, "image_encoder200.pth"),
                                         map_location=lambda storage, loc: storage))
for p in image_encoder.parameters():
  p.requires_grad = False
image_encoder.eval()
text_encoder = M.RNN_ENCODER(VOCAB, nhidden=cfg.TEXT.EMBEDDING_DIM)
text_encoder.load_state_dict(torch.load(os.path.join(WORK, "text_encoder200.pth"),
                                        map_location=lambda storage, loc: storage))
for p in text_encoder.parameters():
  p.requires_grad = False
text_encoder.eval()
netG = M.G_NET()
netsD = [M.D_NET64(), M.D_NET128(), M.D_NET256()]
netG.apply(weights_init)
for netD in netsD:
  netD.apply(weights_init)
avg_param_G = copy_G_params(netG)
optimizersD = [optim.Adam(d.parameters(), lr=cfg.TRAIN.DISCRIMINATOR_LR, betas=(0.5, 0.999))
               for d in netsD]
optimizerG = optim.Adam(netG.parameters(), lr=cfg.TRAIN.GENERATOR_LR, betas=(0.5, 0.999))
real_labels = torch.FloatTensor(BATCH).fill_(1)
fake_labels = torch.FloatTensor(BATCH).fill_(0)
match_labels = torch.LongTensor(range(BATCH))
noise = torch.FloatTensor(BATCH, cfg.GAN.Z_DIM)

# --- synthetic data, as prepare_data returns it (sorted by caption length, decreasing)
rng = np.random.default_rng(0)
lengths = np.sort(rng.integers(8, cfg.TEXT.WORDS_NUM + 1, BATCH))[::-1].copy()
caps = np.zeros((BATCH, cfg.TEXT.WORDS_NUM), np.int64)
for i, n in enumerate(lengths):
  caps[i, :n] = rng.integers(1, VOCAB, n)
captions, cap_lens = torch.from_numpy(caps), torch.from_numpy(lengths)
class_ids = rng.integers(1, 201, BATCH)
imgs = [torch.from_numpy(rng.uniform(-1, 1, (BATCH, 3, s, s)).astype("float32"))
        for s in (64, 128, 256)]


def iteration():
  """condGANTrainer.train's loop body (logging and image saving left out)."""
  hidden = text_encoder.init_hidden(BATCH)
  words_embs, sent_emb = text_encoder(captions, cap_lens, hidden)
  words_embs, sent_emb = words_embs.detach(), sent_emb.detach()
  mask = captions == 0
  num_words = words_embs.size(2)
  if mask.size(1) > num_words:
    mask = mask[:, :num_words]
  noise.data.normal_(0, 1)
  fake_imgs, _, mu, logvar = netG(noise, sent_emb, words_embs, mask)
  for i, netD in enumerate(netsD):
    netD.zero_grad()
    errD = losses.discriminator_loss(netD, imgs[i], fake_imgs[i], sent_emb, real_labels,
                                     fake_labels)
    errD.backward()
    optimizersD[i].step()
  netG.zero_grad()
  errG_total, _ = losses.generator_loss(netsD, image_encoder, fake_imgs, real_labels, words_embs,
                                        sent_emb, match_labels, cap_lens, class_ids)
  errG_total += losses.KL_loss(mu, logvar)
  errG_total.backward()
  optimizerG.step()
  for p, avg_p in zip(netG.parameters(), avg_param_G):
    avg_p.mul_(0.999).add_(p.data, alpha=0.001)
  return float(errG_total)


stamps = []
for _ in range(WARMUP + STEPS):
  iteration()
  stamps.append(time.perf_counter())
  if len(stamps) == 1:
    first_step_end = time.time()
timed = stamps[WARMUP - 1:]
step_s = [b - a for a, b in zip(timed, timed[1:])]
result = {"timed_steps": STEPS, "batch": BATCH, "setup_to_first_step_s": first_step_end - START,
          "peak_rss_mb": peak_rss_mb(), "torch": torch.__version__,
          "threads": torch.get_num_threads()}
if step_s:  # --steps=0: the set-up only
  result.update(images_per_sec=BATCH * STEPS / (timed[-1] - timed[0]),
                median_step_s=statistics.median(step_s), step_s=step_s)
print(json.dumps(result))
