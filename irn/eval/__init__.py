"""Evaluation: PSNR/SSIM on MATLAB's BT.601 Y and LPIPS (:mod:`.metrics`), the evaluation
protocol of ``irn eval`` (:mod:`.protocol`) and its tables, images and JSON (:mod:`.report`)."""
