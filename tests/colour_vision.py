"""Colour distance under normal and simulated dichromat vision (Machado, Oliveira and
Fernandes 2009, severity 1), in CIELAB (ΔE 1976): enough to tell two state colours apart;
and WCAG 2's contrast ratio of a text colour on its background."""
import itertools

SIM = {
    "normal": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216),
                   (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413),
                     (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602),
                   (0.004733, 0.691367, 0.303900)),
}


def _linear(hex_colour):
    c = [int(hex_colour[k:k + 2], 16) / 255 for k in (1, 3, 5)]
    return [x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in c]


def lab(hex_colour, vision="normal"):
    r, g, b = (max(0.0, min(1.0, sum(m * x for m, x in zip(row, _linear(hex_colour)))))
               for row in SIM[vision])
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883
    f = [t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in (x, y, z)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def distance(a, b, vision="normal"):
    return sum((p - q) ** 2 for p, q in zip(lab(a, vision), lab(b, vision))) ** 0.5


def closest(colours, vision):
    return min((distance(colours[a], colours[b], vision), a, b)
               for a, b in itertools.combinations(colours, 2))


def contrast(a, b):
    """WCAG 2's contrast ratio of two colours (1 to 21; 4.5 for small text)."""
    def luminance(c):
        r, g, b_ = _linear(c)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b_
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)
