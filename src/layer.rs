pub struct Conv2d;
pub struct Sequential;
