# expect: reject PointerComparison
# kernel: accept
# why: privileged kernels allow comparing pointers with scalars; we refuse it as a pointer leak through control flow
if r1 > 5 goto +0
r0 = 0
exit
