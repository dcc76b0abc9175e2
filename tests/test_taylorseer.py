"""TaylorSeer forecasting maths on tiny tensors."""

import pytest
import torch

from cachedit.hooks.taylorseer import TaylorSeerCalibrator


def feed(order: int, points: dict[int, float]) -> TaylorSeerCalibrator:
    state = TaylorSeerCalibrator(order)
    for step, value in points.items():
        state.update(step, torch.full((1, 2, 3), float(value)))
    return state


@pytest.mark.parametrize("order", [1, 2, 3])
def test_exact_for_polynomials_of_degree_up_to_order(order):
    poly = {1: lambda t: 3 - 2 * t, 2: lambda t: 1 + t - 0.5 * t**2, 3: lambda t: t**3 - 4 * t}[order]
    computed = [0, 2, 3, 6, 7]  # uneven gaps, as caching leaves them
    state = feed(order, {t: poly(t) for t in computed})
    for later in (8, 9, 12):
        torch.testing.assert_close(state.predict(later), torch.full((1, 2, 3), float(poly(later))))


def test_order_1_is_last_value_plus_difference_times_k_over_n():
    # F = 5 at step 4, 3 at step 2 (N = 2): at step 7 (k = 3), 5 + (5 - 3) * 3 / 2 = 8.
    state = feed(1, {2: 3.0, 4: 5.0})
    torch.testing.assert_close(state.predict(7), torch.full((1, 2, 3), 8.0))


def test_order_2_hand_computed():
    # values 1, 2, 5 at steps 0, 1, 2 lie on t^2 + 1, so step 3 forecasts 10.
    state = feed(2, {0: 1.0, 1: 2.0, 2: 5.0})
    torch.testing.assert_close(state.predict(3), torch.full((1, 2, 3), 10.0))
    # not a polynomial: 1, 4, 2 at steps 0, 1, 2 -> f[2,1] = -2, f[1,0] = 3, f[2,1,0] = -2.5
    # P(4) = 2 + (-2)(4 - 2) + (-2.5)(4 - 2)(4 - 1) = -17
    state = feed(2, {0: 1.0, 1: 4.0, 2: 2.0})
    torch.testing.assert_close(state.predict(4), torch.full((1, 2, 3), -17.0))


def test_keeps_only_order_plus_one_points():
    state = feed(2, {0: 9.0, 1: 9.0, 2: 1.0, 3: 2.0, 4: 5.0})  # the last three lie on a line-free quadratic
    assert state.steps == [4, 3, 2] and len(state.coefficients) == 3


def test_single_point_forecasts_the_point_and_empty_state_raises():
    state = feed(2, {5: 7.0})
    torch.testing.assert_close(state.predict(9), torch.full((1, 2, 3), 7.0))
    with pytest.raises(RuntimeError, match="no computed step"):
        TaylorSeerCalibrator(1).predict(0)


def test_a_shape_change_restarts_the_history():
    state = feed(1, {0: 1.0, 1: 2.0})
    state.update(2, torch.ones(2, 2, 3))
    assert state.steps == [2] and state.predict(3).shape == (2, 2, 3)


def test_forecast_errors_rank_orders_on_a_linear_trend():
    from cachedit.harness.diagnostics import forecast_errors

    residuals = [torch.full((2, 3), 1.0 + 0.5 * t) for t in range(10)]
    errors = forecast_errors(residuals, orders=(0, 1, 2), gap=2)
    assert errors[0] > 0.1 and errors[1] == pytest.approx(0, abs=1e-6) and errors[2] == pytest.approx(0, abs=1e-6)


def test_middle_residuals_are_recorded_once_per_transformer_call(replicas):
    from cachedit.harness.diagnostics import record_middle_residuals

    replica = replicas("tiny_dit")
    residuals = record_middle_residuals(replica.pipe, {**replica.inputs, "output_type": "pt"}, seed=0, Fn=1, Bn=1)
    assert len(residuals) == replica.model.num_inference_steps
    assert residuals[0].shape[0] == 2 * len(replica.inputs["class_labels"])  # both guidance branches, batched


def test_a_lower_order_forecast_from_a_higher_order_state_is_that_order_exactly():
    points = {0: 1.0, 1: 4.0, 2: 2.0, 5: 3.0}
    kept = feed(2, points)
    for order in (0, 1):
        assert torch.equal(kept.predict(7, order), feed(order, points).predict(7))


def test_error_estimate_is_the_next_newton_term_relative_to_the_newest_value():
    # t^2 at steps 0, 1, 2: the order-1 forecast at 3 is 4 + 3 * 1 = 7, off by 2 = f[2,1,0] (1) * (3 - 2)(3 - 1);
    # relative to the newest value 4: 0.5. On a quadratic the estimate is the error itself.
    state = feed(2, {0: 0.0, 1: 1.0, 2: 4.0})
    assert state.error_estimate(3, order=1) == pytest.approx(0.5)
    assert float(state.predict(3, 1).mean()) == pytest.approx(7.0)
    assert state.error_estimate(2, order=1) == 0.0  # at a computed step the forecast is exact
    assert feed(2, {0: 0.0, 1: 1.0}).error_estimate(3, order=1) is None  # needs order + 2 computed steps
    assert feed(1, {0: 0.0, 1: 1.0, 2: 4.0}).error_estimate(3, order=1) is None  # the state keeps too few
