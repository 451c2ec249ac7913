"""The paper's metrics (SSIM, PSNR, L1, LPIPS, FID, FVD), one module per metric."""
