# expect: accept
r2 = *(u32 *)(r1 + 4)
r1 = *(u32 *)(r1 + 0)
r3 = r1
r3 += 34
if r2 >= r3 goto ok
r0 = 1
exit
ok:
r0 = *(u16 *)(r1 + 12)
r0 &= 3
exit
