# expect: accept
r0 = 0
loop:
r0 += 1
if r0 < 10 goto loop
exit
