# expect: reject UnknownHelper
call 999
r0 = 0
exit
