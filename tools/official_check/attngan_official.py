"""taoxugit/AttnGAN (code/ at the fetched commit) under torch 2.13 CPU: build RNN_ENCODER,
CNN_ENCODER and G_NET at small widths with random weights (BN statistics too; the saved G holds
the moving average avg_param_G, different from G, as trainer.save_model writes it), save the files
as the authors' code does (zip and legacy serializations), write captions.pickle as
datasets.load_text_data does, and record the official outputs on fixed inputs (official_out.npz).

usage: TORCH_PYTHON attngan_official.py ATTNGAN_CODE_DIR WORK_DIR [zip|legacy]
  (a throwaway venv with torch and torchvision; never the project's)
"""
import os, pickle, sys, types
import numpy as np
OFF = sys.argv[1]                      # .../taoxugit+AttnGAN/code
WORK = sys.argv[2]
LEGACY = len(sys.argv) > 3 and sys.argv[3] == "legacy"
sys.path.insert(0, OFF)
# --- patches (outside the official files): easydict is not installed, a dict with attributes
class EasyDict(dict):
  __getattr__ = dict.__getitem__
  def __setattr__(self, k, v): self[k] = v
sys.modules["easydict"] = types.SimpleNamespace(EasyDict=EasyDict)
# torchvision 0.28's C ops do not load against the CPU torch wheel; only its Python Inception is used
sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
import torch
import torch.utils.model_zoo as model_zoo
from torchvision import models
from miscc.config import cfg
cfg.CUDA = False
cfg.GAN.GF_DIM, cfg.GAN.Z_DIM, cfg.GAN.CONDITION_DIM, cfg.GAN.R_NUM = 4, 12, 6, 2
cfg.TEXT.EMBEDDING_DIM, cfg.TEXT.WORDS_NUM, cfg.TREE.BRANCH_NUM = 16, 18, 3
cfg.TRAIN.FLAG = True
import model as M
torch.manual_seed(0)
rng = np.random.default_rng(7)

def randomise(net, scale=1.0):
  with torch.no_grad():
    for name, t in net.state_dict().items():
      if name.endswith("num_batches_tracked"):
        continue
      if name.endswith("running_var"):
        t.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, t.shape).astype("float32")))
      elif name.endswith("running_mean"):
        t.copy_(torch.from_numpy(rng.normal(0, 0.3, t.shape).astype("float32")))
      elif t.dim() == 1 and ".bn" in name and name.endswith("weight"):
        t.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, t.shape).astype("float32")))
      else:
        fan_in = int(np.prod(t.shape[1:])) if t.dim() > 1 else 4
        t.copy_(torch.from_numpy((rng.normal(0, scale, t.shape) / np.sqrt(fan_in)).astype("float32")))

def save(obj, path):
  torch.save(obj, path, **({"_use_new_zipfile_serialization": False} if LEGACY else {}))

os.makedirs(WORK, exist_ok=True)
# --- captions.pickle, as datasets.TextDataset.load_text_data writes it (build_dictionary's rules)
words = ["a", "bird", "with", "red", "wings", "and", "short", "beak", "small", "yellow", "this",
         "has", "black", "crown", "white", "belly", "tail", "long"]
train_caps = [[words[i] for i in rng.integers(0, len(words), 9)] for _ in range(20)]
test_caps = [[words[i] for i in rng.integers(0, len(words), 7)] for _ in range(5)]
sys.modules["nltk"] = types.ModuleType("nltk")  # patch: nltk not installed (its tokenizer is not used here)
sys.modules["nltk.tokenize"] = types.SimpleNamespace(RegexpTokenizer=None)
sys.modules["pandas"] = types.ModuleType("pandas")  # patch: not installed, not used here
import datasets  # only for build_dictionary (needs no data)
built = datasets.TextDataset.build_dictionary(None, train_caps, test_caps)
train_new, test_new, ixtoword, wordtoix, n_words = built
with open(os.path.join(WORK, "captions.pickle"), "wb") as f:
  pickle.dump([train_new, test_new, ixtoword, wordtoix], f, protocol=2)

# --- DAMSM encoders, as pretrain_DAMSM.py builds and saves them
text_encoder = M.RNN_ENCODER(n_words, nhidden=cfg.TEXT.EMBEDDING_DIM)
randomise(text_encoder)
inception_state = models.inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()
model_zoo.load_url = lambda url: inception_state   # patch: no download; random weights below
image_encoder = M.CNN_ENCODER(cfg.TEXT.EMBEDDING_DIM)
randomise(image_encoder)
save(text_encoder.state_dict(), os.path.join(WORK, "text_encoder200.pth"))
save(image_encoder.state_dict(), os.path.join(WORK, "image_encoder200.pth"))
text_encoder.eval(); image_encoder.eval()

# --- G_NET, saved as trainer.save_model does: the moving average loaded into G, then state_dict
for mod in ("skimage", "skimage.transform"):  # patch: not installed, not used here
  sys.modules[mod] = types.ModuleType(mod)
sys.modules["skimage"].transform = sys.modules["skimage.transform"]
from miscc.utils import copy_G_params, load_params
netG = M.G_NET()
randomise(netG, 1.6)
avg_param_G = copy_G_params(netG)
randomise(netG, 1.6)      # G's own parameters now differ from the average (BN statistics are G's)
with torch.no_grad():
  for p in avg_param_G:
    p.add_(torch.from_numpy((rng.normal(0, 0.05, p.shape)).astype("float32")))
plain_state = {k: v.clone() for k, v in netG.state_dict().items()}
backup_para = copy_G_params(netG)
load_params(netG, avg_param_G)
save(netG.state_dict(), os.path.join(WORK, "bird_AttnGAN2.pth"))
load_params(netG, backup_para)

# --- official outputs: G as the evaluation code loads it (a new G_NET, load_state_dict, eval())
netG_eval = M.G_NET()
netG_eval.load_state_dict(torch.load(os.path.join(WORK, "bird_AttnGAN2.pth"), weights_only=True))
netG_eval.eval()
lengths = [9, 9, 6, 3]
caps = np.zeros((4, 9), np.int64)
for i, n in enumerate(lengths):
  caps[i, :n] = rng.integers(1, n_words, n)
B = len(lengths)
z = rng.normal(size=(B, cfg.GAN.Z_DIM)).astype("float32")
eps = rng.normal(size=(B, cfg.GAN.CONDITION_DIM)).astype("float32")
out = {"captions": caps, "lengths": np.array(lengths), "z": z, "eps": eps}
with torch.no_grad():
  # text encoder on the padded batch (sorted by length, as the official code sorts)
  hidden = text_encoder.init_hidden(B)
  w_emb, s_emb = text_encoder(torch.from_numpy(caps), torch.tensor(lengths), hidden)
  out["words_emb"], out["sent_emb"] = w_emb.numpy(), s_emb.numpy()
  # G per example (batch 1: each caption unpadded, so the official mask's batch-order bug is moot)
  stages = [[], [], []]
  for i, n in enumerate(lengths):
    c = torch.from_numpy(caps[i:i + 1, :n])
    h = text_encoder.init_hidden(1)
    we, se = text_encoder(c, torch.tensor([n]), h)
    mask = c == 0
    netG_eval.ca_net.reparametrize = (lambda mu, logvar, e=torch.from_numpy(eps[i:i + 1]):
                                      e.mul(logvar.mul(0.5).exp_()).add_(mu))
    imgs, _, _, _ = netG_eval(torch.from_numpy(z[i:i + 1]), se, we, mask)
    for k in range(3):
      stages[k].append(imgs[k].numpy())
  for k in range(3):
    out[f"stage_{k}"] = np.concatenate(stages[k])  # NCHW
  # G as saved vs G's own weights: how far the EMA is from the plain G
  netG_plain = M.G_NET(); netG_plain.load_state_dict(plain_state); netG_plain.eval()
  netG_plain.ca_net.reparametrize = netG_eval.ca_net.reparametrize
  c = torch.from_numpy(caps[3:4, :3]); we, se = text_encoder(c, torch.tensor([3]), text_encoder.init_hidden(1))
  out["plain_stage_2_last"] = netG_plain(torch.from_numpy(z[3:4]), se, we, c == 0)[0][2].numpy()
  # image encoder: a 299 input (the resize is the identity) and a 256 input (resized)
  img299 = rng.uniform(-1, 1, (2, 3, 299, 299)).astype("float32")
  img256 = rng.uniform(-1, 1, (2, 3, 256, 256)).astype("float32")
  out["img299"], out["img256"] = img299, img256
  for name, img in (("299", img299), ("256", img256)):
    f, code = image_encoder(torch.from_numpy(img))
    out[f"features_{name}"], out[f"code_{name}"] = f.numpy(), code.numpy()
  # torch 0.3's bilinear Upsample aligned corners (0.4 changed the default to align_corners=False)
  x = torch.nn.functional.interpolate(torch.from_numpy(img256), size=(299, 299), mode="bilinear",
                                      align_corners=True)
  f, code = image_encoder(x)
  out["features_256_aligned"], out["code_256_aligned"] = f.numpy(), code.numpy()
np.savez(os.path.join(WORK, "official_out.npz"), **out)
print("vocab", n_words, "stage std", [float(out[f'stage_{k}'].std()) for k in range(3)],
      "words_emb", out["words_emb"].shape, "features", out["features_299"].shape)
