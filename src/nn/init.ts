// Parameter initialisation as torch.nn.init does it (in place, without autograd).
import { type Tensor, noGrad } from "../torch";

/** fan_in and fan_out of a weight [out, in, *kernel]. */
export function fans(t: Tensor): [number, number] {
  const s = t.shape;
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return [(s[1] ?? 1) * receptive, s[0] * receptive];
}

export const uniform_ = (t: Tensor, a: number, b: number): Tensor => noGrad(() => t.uniform_(a, b));
export const normal_ = (t: Tensor, mean = 0, std = 1): Tensor => noGrad(() => t.normal_(mean, std));
export const zeros_ = (t: Tensor): Tensor => noGrad(() => t.zero_());
export const ones_ = (t: Tensor): Tensor => noGrad(() => t.fill_(1));
export const constant_ = (t: Tensor, v: number): Tensor => noGrad(() => t.fill_(v));

/** kaiming_uniform_ with leaky-ReLU gain for slope `a` on fan_in (nn.Linear / nn.Conv2d use a = sqrt(5)). */
export function kaimingUniform_(t: Tensor, a = 0): Tensor {
  const gain = Math.sqrt(2 / (1 + a * a));
  const bound = gain * Math.sqrt(3 / fans(t)[0]);
  return uniform_(t, -bound, bound);
}

export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const [fi, fo] = fans(t);
  const bound = gain * Math.sqrt(6 / (fi + fo));
  return uniform_(t, -bound, bound);
}
