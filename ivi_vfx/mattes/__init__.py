"""From roto'd keyframes to mattes for the whole shot: the paper's mask propagation (section 4.2).

A U-Net (nets/unet.py) learns the object on the shot itself. Each training sample is a keyframe
with its object cut out along the key matte and pasted back at a random cyclic shift (the
reference's `train_mask.py`); the target is the pasted copy's matte, and the object's original
place is left out of the loss, so the network learns what the object looks like, never where it
was. Beyond the reference:
- any number of keyframes (each sample draws one), so an object that turns or changes size can be
  roto'd on a few frames and all of them teach;
- the pasted copy is also scaled (0.85-1.2), rotated (+-8 degrees) and mirrored at random, so a
  single key generalises to an object that changes size and pose through the shot;
- a weighted binary cross-entropy (PropagateConfig.object_weight): for removal, a missed object
  pixel (a fringe left in the plate) costs more than an extra background pixel (a little more fill).

On the keyframes the output is the user's own roto, untouched.

Modules: `keys` (the key frames and where they are), `sampling` (the paste trainer's samples and
loss), `tracking` (the temporal constraints: following the object frame to frame, bounding where
it may be), `fitting` (training the U-Net, its self-training rounds, its checkpoint), `writing`
(the matte EXRs of every frame). The whole run, keyframes to written mattes, is
pipeline.propagate.
"""
