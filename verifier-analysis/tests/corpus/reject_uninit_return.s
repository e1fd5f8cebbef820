# expect: reject UninitRegister
exit
