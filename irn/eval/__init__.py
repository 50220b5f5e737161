"""Evaluation: PSNR/SSIM on MATLAB's BT.601 Y and LPIPS (:mod:`.metrics`)."""
