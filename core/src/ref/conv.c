/* Reference convolutions in double: plain loops over every output, weight and
 * input position. These definitions are what the fast kernels are tested against. */
#include <string.h>
#include "../kernels/conv.h"

/* x is (N,Cin,H,W), w is (Cout,Cin/G,KH,KW), b is (Cout) or NULL, y is (N,Cout,OH,OW) */
void ln_ref_conv2d_fwd(const ln_conv_shape *s, const double *x, const double *w,
                       const double *b, double *y) {
    int64_t cig = s->cin / s->groups, cog = s->cout / s->groups;
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t co = 0; co < s->cout; co++) {
            int64_t g = co / cog;
            for (int64_t oy = 0; oy < s->oh; oy++)
                for (int64_t ox = 0; ox < s->ow; ox++) {
                    double acc = b ? b[co] : 0.0;
                    for (int64_t ci = 0; ci < cig; ci++)
                        for (int64_t ky = 0; ky < s->kh; ky++) {
                            int64_t iy = oy * s->sh - s->ph + ky;
                            if (iy < 0 || iy >= s->h) continue;
                            for (int64_t kx = 0; kx < s->kw; kx++) {
                                int64_t ix = ox * s->sw - s->pw + kx;
                                if (ix < 0 || ix >= s->w) continue;
                                acc += x[((n * s->cin + g * cig + ci) * s->h + iy) * s->w + ix] *
                                       w[((co * cig + ci) * s->kh + ky) * s->kw + kx];
                            }
                        }
                    y[((n * s->cout + co) * s->oh + oy) * s->ow + ox] = acc;
                }
        }
}

/* The same loops as the forward, scattering gy into gx, gw and gb. */
void ln_ref_conv2d_bwd(const ln_conv_shape *s, const double *x, const double *w,
                       const double *gy, double *gx, double *gw, double *gb) {
    int64_t cig = s->cin / s->groups, cog = s->cout / s->groups;
    if (gx) memset(gx, 0, (size_t)(s->n * s->cin * s->h * s->w) * sizeof *gx);
    if (gw) memset(gw, 0, (size_t)(s->cout * cig * s->kh * s->kw) * sizeof *gw);
    if (gb) memset(gb, 0, (size_t)s->cout * sizeof *gb);
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t co = 0; co < s->cout; co++) {
            int64_t g = co / cog;
            for (int64_t oy = 0; oy < s->oh; oy++)
                for (int64_t ox = 0; ox < s->ow; ox++) {
                    double d = gy[((n * s->cout + co) * s->oh + oy) * s->ow + ox];
                    if (gb) gb[co] += d;
                    for (int64_t ci = 0; ci < cig; ci++)
                        for (int64_t ky = 0; ky < s->kh; ky++) {
                            int64_t iy = oy * s->sh - s->ph + ky;
                            if (iy < 0 || iy >= s->h) continue;
                            for (int64_t kx = 0; kx < s->kw; kx++) {
                                int64_t ix = ox * s->sw - s->pw + kx;
                                if (ix < 0 || ix >= s->w) continue;
                                int64_t xi = ((n * s->cin + g * cig + ci) * s->h + iy) * s->w + ix;
                                int64_t wi = ((co * cig + ci) * s->kh + ky) * s->kw + kx;
                                if (gx) gx[xi] += d * w[wi];
                                if (gw) gw[wi] += d * x[xi];
                            }
                        }
                }
        }
}

/* x, y are (N,C); w is (K) */
void ln_ref_conv1d_channels_fwd(int64_t n, int64_t c, int64_t k, int64_t pad,
                                const double *x, const double *w, double *y) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < c; o++) {
            double acc = 0;
            for (int64_t j = 0; j < k; j++) {
                int64_t src = o + j - pad;
                if (src >= 0 && src < c) acc += w[j] * x[i * c + src];
            }
            y[i * c + o] = acc;
        }
}

void ln_ref_conv1d_channels_bwd(int64_t n, int64_t c, int64_t k, int64_t pad,
                                const double *x, const double *w, const double *gy,
                                double *gx, double *gw) {
    if (gx) memset(gx, 0, (size_t)(n * c) * sizeof *gx);
    if (gw) memset(gw, 0, (size_t)k * sizeof *gw);
    for (int64_t i = 0; i < n; i++)
        for (int64_t o = 0; o < c; o++)
            for (int64_t j = 0; j < k; j++) {
                int64_t src = o + j - pad;
                if (src < 0 || src >= c) continue;
                if (gx) gx[i * c + src] += w[j] * gy[i * c + o];
                if (gw) gw[j] += x[i * c + src] * gy[i * c + o];
            }
}
