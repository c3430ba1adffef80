"""Data sets for Diffusion Lab, and the value-range contract every model relies on.

* **Images** are float32 ``[N, C, H, W]`` in [−1, 1] (−1 black, +1 white); no diffusion code
  rescales data behind the caller's back (:mod:`.imageset`).
* **2D points** are float32 ``[N, 2]`` in *model coordinates*: each toy set is moved there by a
  fixed affine map per set, so the noise-free set spans [−1, 1] along its longer axis; ``noise``
  is a Gaussian std in model coordinates (:mod:`.toy2d`, :mod:`.toy2d_spec`).

============== ===============================================================================
module         what it holds
============== ===============================================================================
``toy2d_spec`` ``ToySpec``, ``TOY_SPECS``, ``TOY_DATASETS`` (torch-free: the UI lists the sets)
``toy2d``      ``make_2d``, the fixed maps (``toy_scale``, ``to/from_data_coords``)
``imageset``   ``ImageSet``, ``ImageDatasetSpec``, resize / crop / channel helpers
``digits``     scikit-learn digits, their fixed seeded train/test split, ``digit_image``
``synthetic``  colour gradients and shapes, with their exact generative models
``photos``     scikit-learn's two sample photos
``files``      the user's image files, folders, ``.npz``/``.npy`` arrays and IDX files
``registry``   ``IMAGE_DATASETS`` (for ``--dataset NAME``) and ``load_image_dataset``
============== ===============================================================================

Nothing is ever downloaded. Importing this package imports no torch: each name below is
imported from its module on first use (:func:`diffusion_core._lazy.lazy_exports`), so
``from diffusion_core import data; data.make_2d(...)`` works as before.
"""

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "TOY_DATASETS": ".toy2d_spec",
    "TOY_SPECS": ".toy2d_spec",
    "ToySpec": ".toy2d_spec",
    "MAX_POINTS": ".toy2d",
    "from_data_coords": ".toy2d",
    "make_2d": ".toy2d",
    "to_data_coords": ".toy2d",
    "toy_scale": ".toy2d",
    "ImageDatasetSpec": ".imageset",
    "ImageSet": ".imageset",
    "digit_image": ".digits",
    "digits_split_indices": ".digits",
    "load_digits_images": ".digits",
    "GRADIENT_DIRECTIONS": ".synthetic",
    "SHAPE_CLASSES": ".synthetic",
    "SHAPE_MIN_CONTRAST": ".synthetic",
    "gradient_weight_maps": ".synthetic",
    "make_gradients": ".synthetic",
    "make_shapes": ".synthetic",
    "sample_photos": ".photos",
    "IMAGE_EXTENSIONS": ".files",
    "MAX_IMAGE_PIXELS": ".files",
    "MAX_UPLOAD_IMAGES": ".files",
    "UserImageSet": ".files",
    "load_idx_images": ".files",
    "load_image_file": ".files",
    "load_image_files": ".files",
    "load_image_folder": ".files",
    "load_image_zip": ".files",
    "load_npz_images": ".files",
    "IMAGE_DATASETS": ".registry",
    "is_image_dataset": ".registry",
    "load_image_dataset": ".registry",
})
