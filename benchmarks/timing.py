"""What every benchmark here times with: items per second of one call."""
import time


def rate(n: int, fn, *args, **kwargs) -> float:
    """``n`` divided by the seconds ``fn(*args, **kwargs)`` takes."""
    t = time.perf_counter()
    fn(*args, **kwargs)
    return n / (time.perf_counter() - t)
