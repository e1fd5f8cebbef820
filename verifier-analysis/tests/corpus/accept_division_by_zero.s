# expect: accept
r0 = 5
r1 = 0
r0 /= r1
r2 = 7
r2 %= r1
r0 += r2
exit
