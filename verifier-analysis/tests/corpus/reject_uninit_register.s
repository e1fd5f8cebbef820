# expect: reject UninitRegister
r0 = r5
exit
