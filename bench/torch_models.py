"""PyTorch definitions of lunet's ILSVRC model zoo (docs/method.md sections 2-5), the
reference side of the GPU training benchmark (bench/torch_train_bench.py).

The networks are the ones lua/lunet/models/*.lua build: same layers, strides, ECA and
sharing of the basis tensors between blocks (a shared basis is ONE nn.Conv2d instance
assigned into the network and into every block that uses it, so parameters() holds it
once and its gradient sums over all uses). Module names follow the authors' checkpoint
keys (shared/reference/authors-keys/ilsvrc_*.tsv), in the same order, so state_dict()
keys equal theirs. The orthogonality regulariser of method.md section 5 is
`orthogonality(model)`, with lunet's groupings (lua/lunet/reg.lua).

    net = build("ResNet34_DoubleShared", shared_rank=48, unique_rank=1)
    loss = F.cross_entropy(net(x), y) + 10 * orthogonality(net)

Initialisation follows method.md section 4 (ResNets: Kaiming normal fan_out and
orthogonal shared bases; MobileNetV2s: PyTorch's default). Works with PyTorch 1.13 and
2.x; no torchvision.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

WIDTHS = (64, 128, 256, 512)

# (expansion t, output channels, blocks n, stride of the first block) per stage
MBV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
               (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def conv(i, o, k, stride=1, groups=1, bias=False):
    """conv(i, o, k, stride): padding k//2, no bias unless asked (method.md section 2)."""
    return nn.Conv2d(i, o, k, stride=stride, padding=k // 2, groups=groups, bias=bias)


def rank_of(basis):
    """Rows (output filters) of a shared basis."""
    return basis.weight.shape[0]


# ---------------------------------------------------------------------- ResNet blocks
class BasicBlock(nn.Module):
    """conv3x3(i,o,stride) BN ReLU conv3x3(o,o) BN + shortcut (option B), ReLU."""

    def __init__(self, i, o, stride):
        super().__init__()
        self.conv1 = conv(i, o, 3, stride)
        self.bn1 = nn.BatchNorm2d(o)
        self.conv2 = conv(o, o, 3)
        self.bn2 = nn.BatchNorm2d(o)
        self.shortcut = None
        if stride != 1 or i != o:
            self.shortcut = nn.Sequential(conv(i, o, 1, stride), nn.BatchNorm2d(o))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        out = out + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(out, inplace=True)


class SharedBasicBlock(nn.Module):
    """Shared-basis basic block (blocks 2..n of a group; planes -> planes, stride 1):
    h = cat(basis_conv1(x) -> u, B1(x) -> s) -> basis_bn1 -> coeff_conv1 -> bn1 -> ReLU;
    g the same with basis_conv2, B2; out = ReLU(g + x). `bases` is (B1, B2) (children
    shared_basis_1, shared_basis_2) or (B,) (child shared_basis, used twice)."""

    def __init__(self, planes, unique_rank, bases):
        super().__init__()
        self.single = len(bases) == 1
        if self.single:
            self.shared_basis = bases[0]
        else:
            self.shared_basis_1, self.shared_basis_2 = bases
        b1, b2 = bases[0], bases[-1]
        r1, r2 = unique_rank + rank_of(b1), unique_rank + rank_of(b2)
        self.basis_conv1 = conv(planes, unique_rank, 3)
        self.basis_bn1 = nn.BatchNorm2d(r1)
        self.coeff_conv1 = conv(r1, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.basis_conv2 = conv(planes, unique_rank, 3)
        self.basis_bn2 = nn.BatchNorm2d(r2)
        self.coeff_conv2 = conv(r2, planes, 1)
        self.bn2 = nn.BatchNorm2d(planes)

    def bases(self):
        if self.single:
            return self.shared_basis, self.shared_basis
        return self.shared_basis_1, self.shared_basis_2

    def forward(self, x):
        b1, b2 = self.bases()
        h = torch.cat((self.basis_conv1(x), b1(x)), 1)               # (N, u+s, H, W)
        h = F.relu(self.bn1(self.coeff_conv1(self.basis_bn1(h))), inplace=True)
        g = torch.cat((self.basis_conv2(h), b2(h)), 1)
        g = self.bn2(self.coeff_conv2(self.basis_bn2(g)))
        return F.relu(g + x, inplace=True)


class Bottleneck(nn.Module):
    """conv1x1(i,p) BN ReLU conv3x3(p,p,stride) BN ReLU conv1x1(p,4p) BN + shortcut, ReLU."""

    def __init__(self, i, planes, stride):
        super().__init__()
        o = 4 * planes
        self.conv1 = conv(i, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv(planes, o, 1)
        self.bn3 = nn.BatchNorm2d(o)
        self.shortcut = None
        if stride != 1 or i != o:
            self.shortcut = nn.Sequential(conv(i, o, 1, stride), nn.BatchNorm2d(o))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(out))
        out = out + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(out, inplace=True)


class SharedBottleneck(nn.Module):
    """Blocks 2..n of a bottleneck group (4p -> 4p, stride 1): the group's shared
    conv3x3(p,p) replaces conv2 (child shared_basis, or shared_basis_1 when `last` is
    given) and, for ResNet*_Shared, the shared conv1x1(p,4p) `last` replaces conv3
    (child shared_basis_2)."""

    def __init__(self, planes, middle, last=None):
        super().__init__()
        self.conv1 = conv(4 * planes, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        if last is None:
            self.shared_basis = middle
        else:
            self.shared_basis_1 = middle
        self.bn2 = nn.BatchNorm2d(planes)
        if last is None:
            self.conv3 = conv(planes, 4 * planes, 1)
        else:
            self.shared_basis_2 = last
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.middle, self.last = ("shared_basis", "conv3") if last is None else \
            ("shared_basis_1", "shared_basis_2")

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(getattr(self, self.middle)(out)), inplace=True)
        out = self.bn3(getattr(self, self.last)(out))
        return F.relu(out + x, inplace=True)


class ResNet(nn.Module):
    """ILSVRC ResNet: conv1 (7x7/2) bn1 relu maxpool; per group g its shared bases
    (shared_basis_g_1/_2 or shared_basis_g) then layer<g>; avgpool, fc.
    block: "basic" | "bottleneck"; sharing: None | "double" | "single" (basic blocks,
    ranks S*2^(g-1) shared, U*2^(g-1) unique) | "shared_single" | "shared" (bottlenecks).
    `orthogonality_groups`: list of averages, each a list of terms, each a list of the
    basis modules stacked into one matrix (lua/lunet/reg.lua)."""

    def __init__(self, block, blocks, sharing=None, shared_rank=48, unique_rank=1,
                 classes=1000, orthogonal_init=True):
        super().__init__()
        bottleneck = block == "bottleneck"
        expansion = 4 if bottleneck else 1
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        first, second, joint = [], [], []
        in_planes = 64
        for g, width in enumerate(WIDTHS, 1):
            scale = 1 << (g - 1)
            make_shared = None
            if sharing == "double":
                s, u = shared_rank * scale, unique_rank * scale
                b1, b2 = conv(width, s, 3), conv(width, s, 3)
                setattr(self, "shared_basis_%d_1" % g, b1)
                setattr(self, "shared_basis_%d_2" % g, b2)
                joint.append([b1, b2])
                first.append([b1, b2])
                make_shared = lambda w=width, u=u, b=(b1, b2): SharedBasicBlock(w, u, b)
            elif sharing == "single":
                s, u = shared_rank * scale, unique_rank * scale
                b = conv(width, s, 3)
                setattr(self, "shared_basis_%d" % g, b)
                joint.append([b])
                first.append([b])
                make_shared = lambda w=width, u=u, b=(b,): SharedBasicBlock(w, u, b)
            elif sharing == "shared_single":
                b = conv(width, width, 3)
                setattr(self, "shared_basis_%d" % g, b)
                joint.append([b])
                first.append([b])
                make_shared = lambda w=width, b=b: SharedBottleneck(w, b)
            elif sharing == "shared":
                b1, b2 = conv(width, width, 3), conv(width, 4 * width, 1)
                setattr(self, "shared_basis_%d_1" % g, b1)
                setattr(self, "shared_basis_%d_2" % g, b2)
                joint += [[b1], [b2]]
                first.append([b1])
                second.append([b2])
                make_shared = lambda w=width, b1=b1, b2=b2: SharedBottleneck(w, b1, b2)
            elif sharing is not None:
                raise ValueError("ResNet: unknown sharing %r" % (sharing,))
            layer = []
            for i in range(blocks[g - 1]):
                stride = 2 if g > 1 and i == 0 else 1
                if i > 0 and make_shared is not None:
                    layer.append(make_shared())
                elif bottleneck:
                    layer.append(Bottleneck(in_planes, width, stride))
                else:
                    layer.append(BasicBlock(in_planes, width, stride))
                in_planes = width * expansion
            setattr(self, "layer%d" % g, nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * expansion, classes)
        self.orthogonality_groups = [avg for avg in (first, second) if avg]
        init_resnet(self)
        if orthogonal_init:
            init_orthogonal(joint)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))        # (N, classes)


# ---------------------------------------------------------------------- MobileNetV2
class ChannelAttention(nn.Module):
    """ECA: x * sigmoid(conv1d over channels (kernel k, padding (k-1)/2, no bias) of
    the global average pool of x); the kernel is the child `conv` (1, 1, k)."""

    def __init__(self, k):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def forward(self, x):
        y = self.conv(x.mean((2, 3)).unsqueeze(1))                  # (N, 1, C)
        return x * torch.sigmoid(y).reshape(x.shape[0], -1, 1, 1)  # (N, C, H, W)


class InvertedResidual(nn.Module):
    """conv1x1(i, t*i) BN ReLU, depthwise conv3x3(t*i, stride) BN ReLU, conv1x1(t*i, o)
    BN, plus the input when stride == 1 and i == o (ReLU, not ReLU6, as the authors')."""

    def __init__(self, i, o, t, stride):
        super().__init__()
        h = t * i
        self.conv1 = conv(i, h, 1)
        self.bn1 = nn.BatchNorm2d(h)
        self.conv2 = conv(h, h, 3, stride, groups=h)
        self.bn2 = nn.BatchNorm2d(h)
        self.conv3 = conv(h, o, 1)
        self.bn3 = nn.BatchNorm2d(o)
        self.residual = stride == 1 and i == o

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(out))
        return out + x if self.residual else out


class SharedInvertedResidual(nn.Module):
    """Blocks 2..n of stages 3-6 (c -> c, stride 1, t = 6): the stage's shared
    expansion conv1x1(c, 6c) replaces conv1 (child shared_basis1); with `project`
    (SharedDouble) the shared projection conv1x1(6c, c) replaces conv3 (child
    shared_basis2) and ECA (kernel eca_k, child chan_attention) scales its output
    before the residual add."""

    def __init__(self, c, expand, project=None, eca_k=1):
        super().__init__()
        h = rank_of(expand)
        self.shared_basis1 = expand
        if project is not None:
            self.shared_basis2 = project
        self.bn1 = nn.BatchNorm2d(h)
        self.conv2 = conv(h, h, 3, 1, groups=h)
        self.bn2 = nn.BatchNorm2d(h)
        if project is None:
            self.conv3 = conv(h, c, 1)
        self.bn3 = nn.BatchNorm2d(c)
        self.chan_attention = ChannelAttention(eca_k) if project is not None else None
        self.last = "conv3" if project is None else "shared_basis2"

    def forward(self, x):
        out = F.relu(self.bn1(self.shared_basis1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(getattr(self, self.last)(out))
        if self.chan_attention is not None:
            out = self.chan_attention(out)
        return out + x


class MobileNetV2(nn.Module):
    """pre = (conv3x3(3, 32, /2, bias) BN ReLU6); stage1..stage7 (a lone block or a
    Sequential), the shared bases of stages 3-6 registered just before them
    (shared_basis_k, or shared_basis_k_1 / _2 for SharedDouble; k = stage - 2);
    conv1 = (conv1x1(320, 1280, bias) BN ReLU6); avgpool; classifier = (Dropout(0.2),
    Linear). sharing: None | "shared" | "double"."""

    def __init__(self, sharing=None, classes=1000, orthogonal_init=False):
        super().__init__()
        self.pre = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1),
                                 nn.BatchNorm2d(32), nn.ReLU6(inplace=True))
        expands, projects, joint = [], [], []
        in_planes = 32
        for s, (t, o, n, stride) in enumerate(MBV2_STAGES, 1):
            expand = project = None
            if sharing is not None and 3 <= s <= 6:
                k = s - 2
                expand = conv(o, t * o, 1)
                expands.append([expand])
                joint.append([expand])
                if sharing == "double":
                    project = conv(t * o, o, 1)
                    projects.append([project])
                    joint.append([project])
                    setattr(self, "shared_basis_%d_1" % k, expand)
                    setattr(self, "shared_basis_%d_2" % k, project)
                elif sharing == "shared":
                    setattr(self, "shared_basis_%d" % k, expand)
                else:
                    raise ValueError("MobileNetV2: unknown sharing %r" % (sharing,))
            blocks = []
            for i in range(n):
                if i > 0 and expand is not None:
                    blocks.append(SharedInvertedResidual(o, expand, project,
                                                         1 if o < 96 else 3))
                else:
                    blocks.append(InvertedResidual(in_planes, o, t, stride if i == 0 else 1))
                in_planes = o
            setattr(self, "stage%d" % s, blocks[0] if n == 1 else nn.Sequential(*blocks))
        self.conv1 = nn.Sequential(nn.Conv2d(320, 1280, 1), nn.BatchNorm2d(1280),
                                   nn.ReLU6(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, classes))
        self.orthogonality_groups = [avg for avg in (expands, projects) if avg]
        if orthogonal_init:
            init_orthogonal(joint)

    def forward(self, x):
        x = self.pre(x)
        for s in range(1, len(MBV2_STAGES) + 1):
            x = getattr(self, "stage%d" % s)(x)
        x = self.avgpool(self.conv1(x))                              # (N, 1280, 1, 1)
        return self.classifier(torch.flatten(x, 1))                  # (N, classes)


# ---------------------------------------------------------------------- initialisation
def init_resnet(model):
    """Convolutions (shared bases included) Kaiming normal, fan_out, ReLU gain; BN weight
    1, bias 0; fully connected layers keep PyTorch's default (method.md section 4)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def init_orthogonal(joint):
    """Each entry of `joint` is a list of basis modules made (semi-)orthogonal together:
    one orthogonal matrix of all their rows (rows = filters, columns = in*k*k), split
    by rows over them (so B1 and B2 of a DoubleShared group are mutually orthogonal)."""
    for bases in joint:
        ws = [b.weight for b in bases]
        mat = torch.empty(sum(w.shape[0] for w in ws), ws[0][0].numel())
        nn.init.orthogonal_(mat)
        row = 0
        for w in ws:
            w.copy_(mat[row:row + w.shape[0]].reshape(w.shape))
            row += w.shape[0]


# ---------------------------------------------------------------------- regulariser
def orthogonality(model):
    """The orthogonality penalty without lambdaR (method.md section 5): for each
    average of model.orthogonality_groups, (sum over its terms of ||M M^T - I||_F^2) /
    (sum of rows(M)^2), M stacking the rows of the term's bases; the penalty is the sum
    of the averages. A 0-d tensor (zero when the model has no shared basis)."""
    total = None
    for avg in model.orthogonality_groups:
        num, count = 0, 0
        for term in avg:
            mats = [b.weight.reshape(b.weight.shape[0], -1) for b in term]
            m = mats[0] if len(mats) == 1 else torch.cat(mats, 0)  # (rows, in*k*k)
            d = m @ m.t() - torch.eye(m.shape[0], device=m.device, dtype=m.dtype)
            num = num + (d * d).sum()
            count += m.shape[0] * m.shape[0]
        total = num / count if total is None else total + num / count
    if total is None:
        p = next(model.parameters())
        return torch.zeros((), device=p.device, dtype=p.dtype)
    return total


# ---------------------------------------------------------------------- the zoo
BASIC34, BOTTLE50, BOTTLE101 = (3, 4, 6, 3), (3, 4, 6, 3), (3, 4, 23, 3)

# name -> (class, keyword arguments, takes ranks)
MODELS = {
    "ResNet18": (ResNet, dict(block="basic", blocks=(2, 2, 2, 2)), False),
    "ResNet34": (ResNet, dict(block="basic", blocks=BASIC34), False),
    "ResNet34_DoubleShared": (ResNet, dict(block="basic", blocks=BASIC34, sharing="double"), True),
    "ResNet34_SingleShared": (ResNet, dict(block="basic", blocks=BASIC34, sharing="single"), True),
    "ResNet50": (ResNet, dict(block="bottleneck", blocks=BOTTLE50), False),
    "ResNet50_SharedSingle": (ResNet, dict(block="bottleneck", blocks=BOTTLE50,
                                           sharing="shared_single"), False),
    "ResNet50_Shared": (ResNet, dict(block="bottleneck", blocks=BOTTLE50, sharing="shared"), False),
    "ResNet101": (ResNet, dict(block="bottleneck", blocks=BOTTLE101), False),
    "ResNet101_SharedSingle": (ResNet, dict(block="bottleneck", blocks=BOTTLE101,
                                            sharing="shared_single"), False),
    "ResNet101_Shared": (ResNet, dict(block="bottleneck", blocks=BOTTLE101,
                                      sharing="shared"), False),
    "MobileNetV2": (MobileNetV2, dict(), False),
    "MobileNetV2_Shared": (MobileNetV2, dict(sharing="shared"), False),
    "MobileNetV2_SharedDouble": (MobileNetV2, dict(sharing="double"), False),
}

DEFAULT_RANKS = (48, 1)


def takes_ranks(name):
    return MODELS[name][2]


def has_shared_basis(name):
    return "sharing" in MODELS[name][1]


def build(name, shared_rank=None, unique_rank=None, classes=1000):
    """A freshly initialised model (training mode, f32, CPU). shared_rank/unique_rank
    (default 48/1) only for ResNet34_DoubleShared and ResNet34_SingleShared."""
    if name not in MODELS:
        raise ValueError("unknown model '%s'; valid names: %s" % (name, ", ".join(MODELS)))
    cls, kwargs, ranks = MODELS[name]
    kwargs = dict(kwargs, classes=classes)
    if ranks:
        kwargs["shared_rank"] = DEFAULT_RANKS[0] if shared_rank is None else shared_rank
        kwargs["unique_rank"] = DEFAULT_RANKS[1] if unique_rank is None else unique_rank
    elif shared_rank is not None or unique_rank is not None:
        raise ValueError("%s takes no shared_rank/unique_rank" % name)
    return cls(**kwargs)
