# expect: accept
r0 = 2
exit
