# expect: accept
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
call setbyte
r0 = 2
exit
setbyte:
r3 = r1
r3 += 16
if r3 > r2 goto ret
*(u8 *)(r1 + 15) = 1
ret:
r0 = 0
exit
