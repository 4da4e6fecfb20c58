"""Tests for zerograd.optim: convergence, exact update formulas, weight decay, resume, and schedules."""

import math

import numpy as np
import pytest

import zerograd.functional as F
from zerograd import Tensor, nn, optim
from zerograd.errors import ZerogradError
from zerograd.optim.lr_scheduler import CosineAnnealingLR, StepLR

BOOK_COEF = np.array([1 / 20, 1.0], dtype=np.float32)


def book_f(p):
    """The book's f(x, y) = x^2 / 20 + y^2 (section 6.1), minimum 0 at the origin."""
    return (p * p * BOOK_COEF).sum()


# --- convergence -----------------------------------------------------------------------------------

@pytest.mark.parametrize("make, bound", [
    (lambda ps: optim.SGD(ps, lr=0.95), 0.02),  # the learning rates of the book's figure 6-8
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), 0.1),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True), 0.05),
    (lambda ps: optim.AdaGrad(ps, lr=1.5), 0.002),
    (lambda ps: optim.RMSprop(ps, lr=0.1), 0.05),
    (lambda ps: optim.Adam(ps, lr=0.3), 0.15),
    (lambda ps: optim.AdamW(ps, lr=0.3), 0.15),
])
def test_optimizers_descend_the_books_function(make, bound):
    p = nn.Parameter(np.array([-7.0, 2.0], dtype=np.float32))
    opt = make([p])
    assert book_f(p).item() == pytest.approx(6.45)
    for _ in range(30):
        opt.zero_grad()
        book_f(p).backward()
        opt.step()
    assert book_f(p).item() < bound
    assert p.dtype == np.float32


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
    lambda ps: optim.AdaGrad(ps, lr=0.5),
    lambda ps: optim.RMSprop(ps, lr=0.01),
    lambda ps: optim.Adam(ps, lr=0.05),
    lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.0),
])
def test_optimizers_solve_least_squares(make):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = x @ rng.standard_normal((5, 1)).astype(np.float32) + 0.5
    model = nn.Linear(5, 1, generator=0)
    opt = make(model.parameters())
    first = F.mse_loss(model(x), y).item()
    for _ in range(200):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    assert first > 1 and loss.item() < 1e-6


# --- exact update formulas -------------------------------------------------------------------------
# Each reference is the optimizer's formula written out with NumPy in float64, over three steps with
# different gradients so that state (momentum, moments, step counts) is exercised.

P0 = np.array([[0.5, -1.5, 2.0], [-0.25, 1.0, 3.0]])
GRADS = [np.array([[0.1, -0.3, 0.7], [1.2, -0.4, 0.05]]) * k for k in (1.0, -2.0, 0.5)]


def run_optimizer(make, steps=3):
    p = nn.Parameter(P0.copy())
    opt = make([p])
    for g in GRADS[:steps]:
        grad = g.copy()
        p.grad = grad
        opt.step()
        assert np.array_equal(grad, g) and p.grad is grad  # the grad array is never written
    return p.data


def sgd_reference(lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    p, buf = P0.copy(), None
    for g in GRADS:
        g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.3),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, momentum=0.5, weight_decay=0.01),
    dict(lr=0.1, weight_decay=0.1),
])
def test_sgd_matches_the_formula(kwargs):
    np.testing.assert_allclose(run_optimizer(lambda ps: optim.SGD(ps, **kwargs)), sgd_reference(**kwargs), rtol=1e-13)


def test_sgd_one_step_by_hand():
    p = nn.Parameter(np.array([1.0, -2.0]))
    p.grad = np.array([0.5, 0.25])
    optim.SGD([p], lr=0.1).step()
    np.testing.assert_array_equal(p.data, [0.95, -2.025])


def test_momentum_equals_the_books_formula_with_constant_lr():
    # the book: v = momentum * v - lr * grad; p += v
    p_book, v = P0.copy(), np.zeros_like(P0)
    for g in GRADS:
        v = 0.9 * v - 0.01 * g
        p_book = p_book + v
    np.testing.assert_allclose(run_optimizer(lambda ps: optim.SGD(ps, lr=0.01, momentum=0.9)), p_book, rtol=1e-13)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adagrad_matches_the_formula(weight_decay):
    p, h = P0.copy(), np.zeros_like(P0)
    for g in GRADS:
        g = g + weight_decay * p
        h = h + g * g
        p = p - 0.5 * g / (np.sqrt(h) + 1e-10)
    got = run_optimizer(lambda ps: optim.AdaGrad(ps, lr=0.5, weight_decay=weight_decay))
    np.testing.assert_allclose(got, p, rtol=1e-13)
    assert optim.Adagrad is optim.AdaGrad


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.8, 0.0), (0.0, 0.05), (0.8, 0.05)])
def test_rmsprop_matches_the_formula(momentum, weight_decay):
    p, v, buf = P0.copy(), np.zeros_like(P0), np.zeros_like(P0)
    for g in GRADS:
        g = g + weight_decay * p
        v = 0.9 * v + 0.1 * g * g
        update = g / (np.sqrt(v) + 1e-8)
        if momentum:
            buf = momentum * buf + update
            update = buf
        p = p - 0.01 * update
    got = run_optimizer(lambda ps: optim.RMSprop(ps, lr=0.01, alpha=0.9, momentum=momentum, weight_decay=weight_decay))
    np.testing.assert_allclose(got, p, rtol=1e-13)


def adam_reference(lr, betas, eps, weight_decay, decoupled):
    b1, b2 = betas
    p, m, v = P0.copy(), np.zeros_like(P0), np.zeros_like(P0)
    for t, g in enumerate(GRADS, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_matches_the_formula(weight_decay):
    got = run_optimizer(lambda ps: optim.Adam(ps, lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=weight_decay))
    # PyTorch's eps sits outside sqrt(v) / sqrt(1 - b2^t): the same as eps added to sqrt(v_hat)
    np.testing.assert_allclose(got, adam_reference(0.01, (0.8, 0.9), 1e-6, weight_decay, False), rtol=1e-12)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adamw_matches_the_formula(weight_decay):
    got = run_optimizer(lambda ps: optim.AdamW(ps, lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=weight_decay))
    np.testing.assert_allclose(got, adam_reference(0.01, (0.8, 0.9), 1e-6, weight_decay, True), rtol=1e-12)


def test_adam_first_step_moves_each_weight_by_lr():
    # m_hat = g and v_hat = g^2 at t = 1, so the step is lr * sign(g) (up to eps)
    got = run_optimizer(lambda ps: optim.Adam(ps, lr=0.01), steps=1)
    np.testing.assert_allclose(got, P0 - 0.01 * np.sign(GRADS[0]), rtol=1e-6)


# --- weight decay ----------------------------------------------------------------------------------

def test_weight_decay_with_zero_gradient():
    def after(make):
        p = nn.Parameter(np.array([2.0, -4.0]))
        p.grad = np.zeros(2)
        make([p]).step()
        return p.data

    # L2 in SGD and AdamW's decoupled decay both shrink p by (1 - lr * wd)
    np.testing.assert_allclose(after(lambda ps: optim.SGD(ps, lr=0.1, weight_decay=0.5)), [1.9, -3.8], rtol=1e-15)
    np.testing.assert_allclose(after(lambda ps: optim.AdamW(ps, lr=0.1, weight_decay=0.5)), [1.9, -3.8], rtol=1e-15)
    # Adam's L2 goes through the adaptive scaling: the first step is lr * sign(p), whatever p's size
    np.testing.assert_allclose(after(lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.5)), [1.9, -3.9], rtol=1e-6)
    # with no decay, nothing moves
    np.testing.assert_array_equal(after(lambda ps: optim.AdamW(ps, lr=0.1, weight_decay=0.0)), [2.0, -4.0])


def test_weight_decay_keeps_weights_smaller():
    def norm_after(weight_decay):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((32, 10)).astype(np.float32)
        y = rng.standard_normal((32, 1)).astype(np.float32)
        model = nn.Linear(10, 1, generator=0)
        opt = optim.SGD(model.parameters(), lr=0.05, weight_decay=weight_decay)
        for _ in range(100):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
        return np.linalg.norm(model.weight.data)

    assert norm_after(0.5) < 0.8 * norm_after(0.0)


# --- parameters, groups, validation ----------------------------------------------------------------

def test_parameters_without_grad_are_skipped():
    used, unused = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(3))
    opt = optim.Adam([used, unused], lr=0.1)
    used.grad = np.ones(3)
    opt.step()
    assert np.array_equal(unused.data, np.ones(3)) and unused not in opt.state
    assert opt.state[used]["step"] == 1 and not np.array_equal(used.data, np.ones(3))


def test_zero_grad_sets_grads_to_none():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    F.mse_loss(model(np.ones((4, 3), dtype=np.float32)), np.zeros((4, 2))).backward()
    opt.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None


def test_param_groups_have_their_own_hyperparameters():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(2))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["momentum"] == 0.9
    a.grad = b.grad = np.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, -0.1) and np.testing.assert_allclose(b.data, -0.5)
    opt.param_groups[0]["lr"] = 0.0  # a schedule changes lr between steps
    before = a.data.copy()
    opt.step()
    np.testing.assert_array_equal(a.data, before)
    c = nn.Parameter(np.zeros(1))
    opt.add_param_group({"params": [c], "lr": 1.0})
    assert opt.param_groups[2]["momentum"] == 0.9
    with pytest.raises(ZerogradError, match="more than once"):
        opt.add_param_group({"params": [a]})


@pytest.mark.parametrize("make, message", [
    (lambda: optim.SGD([], lr=0.1), "empty"),
    (lambda: optim.SGD(nn.Parameter(np.ones(2)), lr=0.1), "single Tensor"),
    (lambda: optim.SGD([np.ones(2)], lr=0.1), "Tensors"),
    (lambda: optim.SGD([nn.Parameter(np.ones(2))], lr=-1), "learning rate"),
    (lambda: optim.SGD([nn.Parameter(np.ones(2))], lr=0.1, nesterov=True), "Nesterov"),
    (lambda: optim.Adam([nn.Parameter(np.ones(2))], betas=(0.9, 1.0)), "betas"),
    (lambda: optim.RMSprop([nn.Parameter(np.ones(2))], alpha=2), "alpha"),
    (lambda: optim.AdamW([nn.Parameter(np.ones(2))], weight_decay=-0.1), "weight_decay"),
    (lambda: optim.SGD([Tensor(np.ones(2), requires_grad=True) * 2], lr=0.1), "leaf"),
])
def test_invalid_arguments_raise_clear_errors(make, message):
    with pytest.raises(ZerogradError, match=message):
        make()


def test_step_with_closure_returns_the_loss():
    p = nn.Parameter(np.array([-7.0, 2.0], dtype=np.float32))
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = book_f(p)
        loss.backward()
        return loss

    assert opt.step(closure).item() == pytest.approx(6.45)
    assert book_f(p).item() < 6.45


def test_repr_lists_the_groups():
    text = repr(optim.Adam([nn.Parameter(np.ones(2))], lr=0.01))
    assert text.startswith("Adam (\nParameter Group 0\n") and "    lr: 0.01" in text


# --- resume ----------------------------------------------------------------------------------------

OPTIMIZERS = [
    lambda ps: optim.SGD(ps, lr=0.05),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: optim.AdaGrad(ps, lr=0.05),
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, weight_decay=1e-3),
    lambda ps: optim.Adam(ps, lr=0.01, weight_decay=1e-3),
    lambda ps: optim.AdamW(ps, lr=0.01),
]


def _data():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)


def _model():
    return nn.Sequential(nn.Linear(6, 16, generator=0), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3, generator=1))


def _train(model, opt, sched, steps, x, y):
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_resume_from_state_dicts_is_bit_identical(make):
    x, y = _data()
    straight = _model()
    opt = make(straight.parameters())
    _train(straight, opt, CosineAnnealingLR(opt, T_max=10, eta_min=1e-4), 10, x, y)

    first = _model()
    opt = make(first.parameters())
    sched = CosineAnnealingLR(opt, T_max=10, eta_min=1e-4)
    _train(first, opt, sched, 5, x, y)
    saved = first.state_dict(), opt.state_dict(), sched.state_dict()
    _train(first, opt, sched, 2, x, y)  # the saved dicts are copies: stepping on leaves them alone

    resumed = _model()
    resumed.load_state_dict(saved[0])
    opt = make(resumed.parameters())
    opt.load_state_dict(saved[1])
    sched = CosineAnnealingLR(opt, T_max=10, eta_min=1e-4)
    sched.load_state_dict(saved[2])
    _train(resumed, opt, sched, 5, x, y)

    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert np.array_equal(a, b), name
    assert opt.param_groups[0]["lr"] == sched.get_last_lr()[0]


def test_optimizer_state_dict_layout_and_errors():
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.01)
    model.weight.grad, model.bias.grad = np.ones((2, 3), np.float32), np.ones(2, np.float32)
    opt.step()
    state = opt.state_dict()
    assert state["param_groups"] == [
        {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "params": [0, 1]}
    ]
    assert set(state["state"]) == {0, 1} and state["state"][0]["step"] == 1
    assert state["state"][0]["exp_avg"].shape == (2, 3)
    state["state"][0]["exp_avg"][...] = 99  # a copy
    assert not np.any(opt.state[model.weight]["exp_avg"] == 99)

    other = optim.Adam(nn.Linear(3, 4).parameters())
    with pytest.raises(ZerogradError, match="shape"):
        other.load_state_dict(opt.state_dict())
    with pytest.raises(ZerogradError, match="parameters"):
        optim.Adam([model.weight]).load_state_dict(opt.state_dict())
    with pytest.raises(ZerogradError, match="state_dict"):
        opt.load_state_dict({"lr": 1})

    # a state read back from JSON (a checkpoint's metadata) has lists for tuples
    state = opt.state_dict()
    state["param_groups"][0]["betas"] = [0.5, 0.6]
    fresh = optim.Adam(model.parameters())
    fresh.load_state_dict(state)
    assert fresh.param_groups[0]["betas"] == (0.5, 0.6) and fresh.state[model.weight]["step"] == 1
    state["param_groups"][0]["betas"] = [0.5, 1.5]
    with pytest.raises(ZerogradError, match="betas"):
        fresh.load_state_dict(state)
    assert fresh.param_groups[0]["betas"] == (0.5, 0.6)  # all or nothing


# --- learning-rate schedules -----------------------------------------------------------------------

def _sgd(lr=1.0, groups=1):
    return optim.SGD([{"params": [nn.Parameter(np.zeros(1))]} for _ in range(groups)], lr=lr)


def test_step_lr_sequence():
    assert optim.StepLR is StepLR and optim.CosineAnnealingLR is CosineAnnealingLR
    opt = _sgd(1.0)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(4):
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert opt.param_groups[0]["lr"] == 0.25 and opt.param_groups[0]["initial_lr"] == 1.0


def test_cosine_annealing_reaches_eta_min_at_t_max():
    opt = _sgd(0.1)
    opt.param_groups[0]["lr"] = 0.1
    sched = CosineAnnealingLR(opt, T_max=4, eta_min=0.001)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(4):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    expected = [0.001 + 0.099 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    assert lrs == pytest.approx(expected, rel=1e-15)
    assert lrs[0] == 0.1 and lrs[2] == pytest.approx(0.0505) and lrs[4] == 0.001
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_schedules_treat_each_group_from_its_own_start():
    opt = _sgd(1.0, groups=2)
    opt.param_groups[1]["lr"] = 0.2
    sched = StepLR(opt, step_size=1, gamma=0.1)
    sched.step()
    assert sched.get_last_lr() == pytest.approx([0.1, 0.02])


def test_scheduler_state_dict_resumes_the_sequence():
    sched = StepLR(_sgd(1.0), step_size=2, gamma=0.5)
    for _ in range(3):
        sched.step()
    state = sched.state_dict()
    assert state["last_epoch"] == 3 and "optimizer" not in state
    other = StepLR(_sgd(1.0), step_size=5, gamma=0.9)
    other.load_state_dict(state)
    assert other.optimizer.param_groups[0]["lr"] == 0.5  # the saved epoch's rate, not epoch 0's
    other.step()
    sched.step()
    assert other.get_last_lr() == sched.get_last_lr() == [0.25]
    with pytest.raises(ZerogradError, match="state_dict"):
        other.load_state_dict({})
    with pytest.raises(ZerogradError, match="step_size"):
        StepLR(_sgd(), step_size=0)
    with pytest.raises(ZerogradError, match="T_max"):
        CosineAnnealingLR(_sgd(), T_max=0)


def test_positional_arguments_mean_what_they_mean_in_pytorch():
    from zerograd import Tensor

    p = [Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)]
    sgd = optim.SGD(p, 0.1, 0.9, 0, 1e-4)  # torch.optim.SGD(params, lr, momentum, dampening, weight_decay, ...)
    assert sgd.param_groups[0]["weight_decay"] == 1e-4 and sgd.param_groups[0]["nesterov"] is False
    with pytest.raises(TypeError):
        optim.AdaGrad(p, 0.01, 0.1)  # torch's 3rd Adagrad argument is lr_decay: refuse rather than misread
    with pytest.raises(ZerogradError, match="finite"):
        optim.SGD(p, lr=float("inf"))
