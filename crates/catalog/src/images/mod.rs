//! Product images, served by the catalog itself: the photo an admin uploaded, stored at a few
//! widths ([`photo`], [`store`]), or else an illustration drawn for the product ([`drawing`]).

pub mod drawing;
pub mod photo;
pub mod store;
