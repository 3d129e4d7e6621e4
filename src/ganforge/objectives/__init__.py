"""Objectives: one class per GAN family owns its D and G passes (forward, loss, backward, stats).

`AdversarialObjective` runs the passes every family shares: optional labels (cGAN, projection,
AC-GAN), InfoGAN's Q loss, DiffAugment, the R1 and R2 penalties; a family adds its losses (`d_loss`,
`g_loss`) and anything else it needs (WGAN's clipping, WGAN-GP's penalty, BEGAN's k_t, RpGAN's real
logits in the G phase).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch
import torch.nn as nn

from ..config import ObjectiveConfig
from ..errors import GanforgeError
from ..registry import Registry
from .. import stats
from . import losses
from .penalties import gradient_penalty, r1_penalty, r2_penalty


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Logits from a bf16/fp16 autocast region, promoted so that losses are computed in float32."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


class Objective:
    """Computes one phase's loss and calls backward; the trainer zeroes, clips and steps."""

    name = "base"

    def __init__(self, cfg: ObjectiveConfig) -> None:
        self.cfg = cfg

    def setup(self, cfg: Any, G: nn.Module, D: nn.Module) -> None:
        """Read the run's full Config and check the networks fit this objective (GanforgeError if not)."""

    def accumulate_gradients(
        self,
        phase: str,
        G: nn.Module,
        D: nn.Module,
        real: torch.Tensor,
        labels: Optional[torch.Tensor],
        z: torch.Tensor,
    ) -> None:
        raise NotImplementedError

    def after_step(self, phase: str, G: nn.Module, D: nn.Module) -> None:
        """Called by the trainer after the optimiser step of `phase` (WGAN's weight clipping)."""

    def graph_blocker(self) -> Optional[str]:
        """Why this objective's step cannot be captured as a CUDA graph (host-side decisions), or None."""
        return None

    def set_gamma(self, r1: float, r2: float) -> None:
        """The R1 and R2 weights (gamma) for the next step: objective.r1/r2.gamma, or their ramps' values."""

    def advance(self, d_updates: int) -> None:
        """Advance host-side counters after a replayed CUDA graph step (whose Python code did not run)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class AdversarialObjective(Objective):
    """The shared passes. Subclasses set `d_loss` / `g_loss` (pure functions of logits)."""

    d_loss: Callable[..., torch.Tensor] = staticmethod(losses.gan_d)
    g_loss: Callable[..., torch.Tensor] = staticmethod(losses.ns_g)
    probabilities = False  # logits are log-odds: report D(x) and D(G(z)) as probabilities
    g_needs_real = False  # g_loss also takes real_logits (relativistic losses)

    def __init__(self, cfg: ObjectiveConfig) -> None:
        super().__init__(cfg)
        self.conditioning = "none"
        self.info = (0, 0)
        self.augment: list[str] = []
        self.d_steps = 0  # D updates so far (lazy R1, R2)
        self.gamma = {"r1": cfg.r1.gamma, "r2": cfg.r2.gamma}  # this step's weights (set_gamma: the ramps)
        self.ramps: list[str] = []  # the run's per-step ramps (setup), set on the host

    def setup(self, cfg: Any, G: nn.Module, D: nn.Module) -> None:
        from ..augment import parse_policy

        if hasattr(D, "reconstruct"):
            raise GanforgeError(
                f"objective '{self.name}' needs a discriminator that scores images; the autoencoder D of "
                f"--arch began is trained by --objective began"
            )
        self.conditioning = cfg.model.conditioning
        self.info = (cfg.model.info_cat, cfg.model.info_cont)
        self.augment = parse_policy(cfg.train.diffaugment)
        if self.augment and cfg.data.dataset.startswith("toy2d"):
            raise GanforgeError("train.diffaugment augments images; toy2d data are 2-D points")
        if (self.conditioning == "acgan" or any(self.info)) and not hasattr(D, "forward_aux"):
            raise GanforgeError(f"this discriminator has no head for {'AC-GAN' if self.conditioning == 'acgan' else 'InfoGAN'}")
        self.ramps = host_ramps(cfg)

    @property
    def _aux(self) -> bool:
        return self.conditioning == "acgan" or any(self.info)

    def _labels(self, labels: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        return labels if self.conditioning != "none" else None

    def score(self, D: nn.Module, x: torch.Tensor, y: Optional[torch.Tensor]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(logits [B], head output or None) of D on DiffAugment(x)."""
        if self.augment:
            from ..augment import diff_augment

            x = diff_augment(x, self.augment)
        if self._aux:
            logits, aux = D.forward_aux(x, y)
            return _at_least_fp32(logits), (_at_least_fp32(aux) if aux is not None else None)
        return _at_least_fp32(D(x) if y is None else D(x, y)), None

    def aux_loss(self, aux: Optional[torch.Tensor], y: Optional[torch.Tensor], G: nn.Module, z: torch.Tensor, real: bool,
                 ac_scale: float = 1.0) -> torch.Tensor:
        """AC-GAN's classification loss (times `ac_scale`) and, on generated images, InfoGAN's Q loss (0 when neither)."""
        total = torch.zeros((), device=z.device)
        if aux is None:
            return total
        if self.conditioning == "acgan" and y is not None and ac_scale > 0:
            total = total + ac_scale * self.cfg.ac.weight * losses.class_ce(logits=aux, labels=y)
        if any(self.info) and not real:
            n_cat, n_cont = self.info
            cat, cont = G.codes(z)
            q = torch.zeros((), device=z.device)
            if n_cat:
                ce = losses.class_ce(logits=aux[:, :n_cat], labels=cat)
                stats.report("info/mi_cat", math.log(n_cat) - ce.detach())  # lower bound on I(c; G(z, c))
                q = q + ce
            if n_cont:
                # Gaussian Q with unit variance: -log Q(c|x) = 1/2 (c - mu)^2 + const
                q = q + 0.5 * (aux[:, n_cat : n_cat + n_cont] - cont).pow(2).sum(1).mean()
            stats.report("info/q_loss", q.detach())
            total = total + self.cfg.info.weight * q
        return total

    def set_gamma(self, r1: float, r2: float) -> None:
        self.gamma = {"r1": r1, "r2": r2}

    def penalty(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        """Extra D loss: lazy R1 on real data and lazy R2 on generated data, each when its gamma > 0
        (objective.r1, objective.r2; WGAN-GP adds its own)."""
        terms = []
        for name, fn, x in (("r1", r1_penalty, real), ("r2", r2_penalty, fake)):
            gamma, every = self.gamma[name], getattr(self.cfg, name).every
            if gamma > 0 and self.d_steps % every == 0:
                value = fn(lambda v: self.score(D, v, y)[0], x)
                stats.report(f"penalty/{name}", value.detach())
                terms.append(0.5 * gamma * every * value)
        return sum(terms[1:], terms[0]) if terms else torch.zeros((), device=real.device)

    def accumulate_gradients(self, phase, G, D, real, labels, z) -> None:
        y = self._labels(labels)
        if phase == "D":
            with torch.no_grad():
                fake = G(z) if y is None else G(z, y)
            real_logits, real_aux = self.score(D, real, y)
            fake_logits, fake_aux = self.score(D, fake, y)
            loss = type(self).d_loss(real_logits=real_logits, fake_logits=fake_logits)
            stats.report("loss/D", loss.detach())
            loss = (loss + self.aux_loss(real_aux, y, G, z, real=True)
                    + self.aux_loss(fake_aux, y, G, z, real=False, ac_scale=self.cfg.ac.fake_weight))
            loss = loss + self.penalty(D, real, fake, y)
            loss.backward()
            self.d_steps += 1
            self.report_scores(real_logits.detach(), fake_logits.detach())
            if self.conditioning == "acgan" and y is not None:
                stats.report("acgan/real_acc", (real_aux.detach().argmax(1) == y).float().mean())
        elif phase == "G":
            fake_logits, fake_aux = self.score(D, G(z) if y is None else G(z, y), y)
            paired = {"real_logits": self.paired_real_logits(D, real, y)} if self.g_needs_real else {}
            loss = type(self).g_loss(fake_logits=fake_logits, **paired)
            stats.report("loss/G", loss.detach())
            loss = loss + self.aux_loss(fake_aux, y, G, z, real=False)
            loss.backward()
        else:
            raise ValueError(f"unknown phase {phase!r}")

    def paired_real_logits(self, D: nn.Module, real: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
        """D's logits on real data for G's loss: constants of the G phase (no graph; D is not trained here)."""
        with torch.no_grad():
            return self.score(D, real.detach(), y)[0]

    def report_scores(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:
        if self.probabilities:
            stats.report("D(x)", torch.sigmoid(real_logits).mean())
            stats.report("D(G(z))", torch.sigmoid(fake_logits).mean())
        stats.report("logit/real", real_logits.mean())
        stats.report("logit/fake", fake_logits.mean())

    def graph_blocker(self) -> Optional[str]:
        for name in ("r1", "r2"):
            c = getattr(self.cfg, name)
            if max(c.gamma, c.gamma_final or 0.0) > 0 and c.every > 1:
                return f"lazy {name.upper()} (objective.{name}.every > 1) picks its steps on the host"
        if self.ramps:  # a captured step would replay the values of its capture
            return f"the ramps ({', '.join(self.ramps)}) are set on the host every step"
        return None

    def advance(self, d_updates: int) -> None:
        self.d_steps += d_updates

    def state_dict(self) -> dict[str, Any]:
        return {"d_steps": self.d_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.d_steps = int(state.get("d_steps", 0))


class LogisticGAN(AdversarialObjective):
    """The original GAN: D maximises log D(x) + log(1 - D(G(z))); G uses `g_loss`."""

    probabilities = True
    d_loss = staticmethod(losses.gan_d)
    g_loss: Callable[..., torch.Tensor] = staticmethod(losses.ns_g)


OBJECTIVES: Registry[type[Objective]] = Registry("objective")


@OBJECTIVES.register("ns")
class NonSaturating(LogisticGAN):
    """Non-saturating GAN (Goodfellow et al. 2014, sec. 3): G minimises -log D(G(z))."""

    name = "ns"
    g_loss = staticmethod(losses.ns_g)


@OBJECTIVES.register("minimax")
class Minimax(LogisticGAN):
    """The original minimax GAN: G minimises log(1 - D(G(z))), which saturates when D wins."""

    name = "minimax"
    g_loss = staticmethod(losses.minimax_g)


@OBJECTIVES.register("infogan")
class InfoGAN(LogisticGAN):
    """InfoGAN (Chen et al. 2016): the non-saturating GAN plus a Q head on D's trunk that recovers the
    codes from G(z, c); -Q loss is a lower bound on the mutual information (`info/mi_cat` -> ln K)."""

    name = "infogan"
    g_loss = staticmethod(losses.ns_g)

    def setup(self, cfg: Any, G: nn.Module, D: nn.Module) -> None:
        if not (cfg.model.info_cat or cfg.model.info_cont):
            raise GanforgeError(
                "objective 'infogan' needs latent codes: set model.info_cat (e.g. 10) and/or model.info_cont, "
                "or use --preset infogan"
            )
        super().setup(cfg, G, D)


@OBJECTIVES.register("wgan")
class WGAN(AdversarialObjective):
    """WGAN (Arjovsky et al. 2017): a critic kept roughly Lipschitz by clipping its weights to
    [-objective.wgan.clip, objective.wgan.clip]."""

    name = "wgan"
    d_loss = staticmethod(losses.wgan_d)
    g_loss = staticmethod(losses.wgan_g)

    def report_scores(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:
        super().report_scores(real_logits, fake_logits)
        stats.report("wgan/distance", real_logits.mean() - fake_logits.mean())

    def after_step(self, phase: str, G: nn.Module, D: nn.Module) -> None:
        if phase == "D":
            with torch.no_grad():
                for p in D.parameters():
                    p.clamp_(-self.cfg.wgan.clip, self.cfg.wgan.clip)


@OBJECTIVES.register("wgan-gp")
class WGANGP(WGAN):
    """WGAN-GP (Gulrajani et al. 2017): the critic's gradient norm pushed to 1 on random interpolates,
    weighted by objective.gp.weight (lambda in the paper)."""

    name = "wgan-gp"

    def after_step(self, phase: str, G: nn.Module, D: nn.Module) -> None:
        pass  # no weight clipping: the penalty keeps the critic Lipschitz

    def penalty(self, D, real, fake, y) -> torch.Tensor:
        gp = gradient_penalty(lambda x: self.score(D, x, y)[0], real, fake)
        stats.report("penalty/gp", gp.detach())
        return self.cfg.gp.weight * gp + super().penalty(D, real, fake, y)


@OBJECTIVES.register("hinge")
class Hinge(AdversarialObjective):
    """The hinge loss (Lim & Ye 2017), used by SNGAN, SAGAN and BigGAN."""

    name = "hinge"
    d_loss = staticmethod(losses.hinge_d)
    g_loss = staticmethod(losses.hinge_g)


@OBJECTIVES.register("lsgan")
class LSGAN(AdversarialObjective):
    """Least-squares GAN (Mao et al. 2017), targets a=0 (fake), b=c=1 (real)."""

    name = "lsgan"
    d_loss = staticmethod(losses.lsgan_d)
    g_loss = staticmethod(losses.lsgan_g)


@OBJECTIVES.register("rpgan")
class RpGAN(AdversarialObjective):
    """The relativistic pairing GAN (Jolicoeur-Martineau 2019), R3GAN's loss (Huang et al. 2024, with
    objective.r1 and objective.r2 at one gamma): D ranks each real sample above the generated one at its batch
    position, G the other way round; G's loss reads D's real logits as constants."""

    name = "rpgan"
    d_loss = staticmethod(losses.rpgan_d)
    g_loss = staticmethod(losses.rpgan_g)
    g_needs_real = True

    def report_scores(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> None:
        # D(x), D(G(z)): sigmoids of the paired logit difference, the probability that D ranks x_i above G(z_i)
        # (and the other way round); the raw logits are no probabilities, the loss ignores a shift of both.
        diff = real_logits - fake_logits  # [B]
        stats.report("D(x)", torch.sigmoid(diff).mean())
        stats.report("D(G(z))", torch.sigmoid(-diff).mean())
        super().report_scores(real_logits, fake_logits)


@OBJECTIVES.register("began")
class BEGAN(Objective):
    """BEGAN (Berthelot et al. 2017): D is an autoencoder; L(v) = E|v - D(v)|.

    L_D = L(x) - k_t L(G(z)),  L_G = L(G(z)),  k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1),
    M_global = L(x) + |gamma L(x) - L(G(z))| (logged every step as began/M_global);
    gamma and lambda_k are objective.began.gamma and objective.began.lambda_k.
    """

    name = "began"

    def graph_blocker(self) -> Optional[str]:
        return "BEGAN updates k_t from losses read on the host every step"

    def __init__(self, cfg: ObjectiveConfig) -> None:
        super().__init__(cfg)
        self.k = 0.0
        self._loss_real: Optional[float] = None

    def setup(self, cfg: Any, G: nn.Module, D: nn.Module) -> None:
        if not hasattr(D, "reconstruct"):
            raise GanforgeError(
                f"objective 'began' needs an autoencoder discriminator; --arch {cfg.model.arch} is not one (use --arch began)"
            )
        if cfg.train.diffaugment:
            raise GanforgeError("objective 'began' does not support train.diffaugment (D reconstructs its input)")

    def accumulate_gradients(self, phase, G, D, real, labels, z) -> None:
        if phase == "D":
            with torch.no_grad():
                fake = G(z)
            loss_real = losses.l1_reconstruction(x=real, recon=D.reconstruct(real)).mean()
            loss_fake = losses.l1_reconstruction(x=fake, recon=D.reconstruct(fake)).mean()
            loss = loss_real - self.k * loss_fake
            loss.backward()
            self._loss_real = float(loss_real.detach())
            stats.report("loss/D", loss.detach())
            stats.report("began/L_real", loss_real.detach())
        elif phase == "G":
            fake = G(z)
            loss = losses.l1_reconstruction(x=fake, recon=D.reconstruct(fake)).mean()
            loss.backward()
            stats.report("loss/G", loss.detach())
            if self._loss_real is not None:
                l_fake = float(loss.detach())
                c = self.cfg.began
                balance = c.gamma * self._loss_real - l_fake
                self.k = min(max(self.k + c.lambda_k * balance, 0.0), 1.0)
                stats.report("began/M_global", self._loss_real + abs(balance))
            stats.report("began/k", self.k)
        else:
            raise ValueError(f"unknown phase {phase!r}")

    def state_dict(self) -> dict[str, Any]:
        return {"k": self.k, "loss_real": self._loss_real}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.k = float(state.get("k", 0.0))
        self._loss_real = state.get("loss_real")


def host_ramps(cfg: Any) -> list[str]:
    """The config keys of the per-step ramps that are on (train/loop.py sets their values before each step)."""
    o, t = cfg.objective, cfg.train
    on = {
        "objective.r1.gamma_final": o.r1.gamma_final is not None,
        "objective.r2.gamma_final": o.r2.gamma_final is not None,
        "g_optim.beta2_final": cfg.g_optim.beta2_final is not None,
        "d_optim.beta2_final": cfg.d_optim.beta2_final is not None,
        "train.ema_rampup": t.ema_rampup,
    }
    return [key for key, is_on in on.items() if is_on]


def build_objective(cfg: ObjectiveConfig) -> Objective:
    return OBJECTIVES.get(cfg.name)(cfg)


__all__ = ["OBJECTIVES", "Objective", "AdversarialObjective", "build_objective", "losses"]
