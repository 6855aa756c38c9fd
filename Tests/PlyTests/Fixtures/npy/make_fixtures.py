# Regenerates the .npy fixtures: python3 make_fixtures.py (run in this directory).
import numpy as np
from numpy.lib import format as F

a = (np.arange(6, dtype='<f4').reshape(2, 3) * 0.5 - 1)
np.save('f32_2x3.npy', a)
np.save('f64_2x3.npy', np.array([[0.1, -2.5, 3.0], [1e-3, 1e10, -0.0]], dtype='<f8'))
np.save('u8_2x2.npy', np.array([[0, 255], [128, 1]], dtype='u1'))
np.save('f32_scalar.npy', np.float32(7.5))
np.save('f32_empty_0x3.npy', np.zeros((0, 3), dtype='<f4'))
np.save('f32_nchw_1x1x2x2.npy', np.array([[[[1, 2], [3, 4]]]], dtype='<f4'))
for v in [(2, 0), (3, 0)]:
    with open('f32_2x3_v%d.npy' % v[0], 'wb') as f:
        F.write_array(f, a, version=v)
# refused: Fortran order, big-endian, object, int64, structured
np.save('bad_fortran.npy', np.asfortranarray(a))
np.save('bad_bigendian.npy', a.astype('>f4'))
np.save('bad_object.npy', np.array([1, 'x', None], dtype=object), allow_pickle=True)
np.save('bad_int64.npy', np.arange(4, dtype='<i8'))
np.save('bad_structured.npy', np.zeros(2, dtype=[('x', '<f4'), ('y', '<i4')]))
